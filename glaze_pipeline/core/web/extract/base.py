"""What every extraction method shares: the page, its decoding and parsing, and the clue every method reports.

A method never scores what it finds: it reports a `Clue` (what the page states, how and where,
and what the page says around it). The choice step weighs clues against each other and the
calibration step turns what won, and why, into a confidence (see `choose` and `calibration`).
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import lxml.etree
import lxml.html
import phonenumbers

from glaze_pipeline.core.model.fields import CATALOG, SOCIAL_FIELDS

EVIDENCE_LIMIT = 300
# Browsers sniff the charset from the first 1024 bytes; pages in the wild are sloppier, so look further.
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Page:
    url: str  # final URL of the page, after redirects
    body: bytes
    content_type: str | None = None  # the HTTP Content-Type header, may carry charset


@dataclass(frozen=True)
class Context:
    """What every extraction method may know about a page besides its tree."""

    page_url: str
    base_url: str  # the page's <base href>, else its URL: what relative links resolve against
    brand: str  # the site's domain label, compacted ("helixbiotech"), for picking the brand out of a title
    region: str | None  # ISO-2 region to read national phone numbers: the ccTLD, else the site's stated country
    site_host: str  # the company's host without "www.", to tell its own addresses from third parties'
    is_home: bool  # the homepage speaks for the company; an article's meta description does not
    region_guessed: bool = False  # the region comes from the page's language, not from an address or the domain
    is_about: bool = False  # an about, history or company page, where founding years are stated
    lines: tuple[str, ...] | None = None  # the page's visible lines, when already split


@dataclass(frozen=True)
class Clue:
    """One statement a page makes about one field, before any choice: what, how, where and in what setting."""

    field: str
    value: str  # normalised by the catalog
    method: str  # the kind of statement: structured, meta, title, logo, link, text, site
    what: str  # the statement in words, for the evidence: "json-ld Organization.email", "mailto link"
    page: str
    traits: frozenset[str] = frozenset()  # what the page says around it: "hq", "fax", "header", "offsite", ...
    place: str = ""  # clues read from one postal address share it, so city, country and location go together

    @property
    def evidence(self) -> str:
        return f"{self.what} @ {self.page}"[:EVIDENCE_LIMIT]


# One extraction method: a page's tree in, clues out (None where the catalog rejected a raw value).
Method = Callable[[lxml.html.HtmlElement, Context], Iterator["Clue | None"]]


# --- decoding -------------------------------------------------------------------------------------------

_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([\w.:\-]+)", re.IGNORECASE)
# WHATWG: these labels mean windows-1252 on the web, whose extra letters (’ € œ) Latin-1 lacks.
_MEANS_CP1252 = {"ascii", "latin_1", "iso8859-1", "cp1252"}


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip()).name
    except LookupError:
        return None
    return "cp1252" if name in _MEANS_CP1252 else name


def decode_html(body: bytes, content_type: str | None) -> str:
    """Text of an HTML body: BOM, then header charset, then <meta> charset, then UTF-8, then Windows-1252."""
    if body.startswith(codecs.BOM_UTF8):
        return body[len(codecs.BOM_UTF8) :].decode("utf-8", errors="replace")
    header = _HEADER_CHARSET.search(content_type) if content_type else None
    declared = _codec(header.group(1)) if header else None
    if declared is None and (meta := _META_CHARSET.search(body[:_SNIFF_BYTES])):
        declared = _codec(meta.group(1).decode("ascii", errors="ignore"))
        # A <meta> that could be read as ASCII cannot really be UTF-16/32 (WHATWG says: use UTF-8).
        if declared and declared.startswith(("utf-16", "utf-32")):
            declared = "utf-8"
    for encoding in (declared, "utf-8"):
        if encoding:
            try:
                return body.decode(encoding)
            except (UnicodeDecodeError, LookupError):
                continue
    return body.decode("cp1252", errors="replace")


def parse_page(page: Page) -> lxml.html.HtmlElement | None:
    text = decode_html(page.body, page.content_type)
    if not text.strip():
        return None
    # Hand lxml UTF-8 bytes with the encoding fixed: it refuses str input carrying an XML declaration.
    parser = lxml.html.HTMLParser(encoding="utf-8", remove_comments=True)
    try:
        doc = lxml.html.document_fromstring(text.encode("utf-8", errors="replace"), parser=parser)
    except (lxml.etree.ParserError, lxml.etree.XMLSyntaxError, ValueError):
        return None
    return doc if isinstance(doc, lxml.html.HtmlElement) else None


# --- shared helpers -------------------------------------------------------------------------------------


def clue(
    field: str, raw: object, method: str, what: str, ctx: Context, traits: Iterable[str] = (), place: str = ""
) -> Clue | None:
    """A catalog-normalised statement, or None when the catalog refuses the raw value."""
    value = CATALOG[field].clean(raw)
    if value is None:
        return None
    return Clue(field, value, method, what, ctx.page_url, frozenset(traits), place)


def compact(text: str) -> str:
    """Lowercase ASCII letters and digits only, accents folded: "Café Lumière" -> "cafelumiere"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def host_of(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc"}


def brand_of(url: str) -> str:
    """The registrable label of a host ("www.acme.co.uk" -> "acme"), without a public-suffix list."""
    labels = host_of(url).removeprefix("www.").split(".")
    if not re.search(r"[a-z]", labels[-1]):  # an IP address names no brand
        return ""
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return compact(labels[-3])
    return compact(labels[-2]) if len(labels) >= 2 else compact(labels[0])


def region_of(url: str) -> str | None:
    tld = host_of(url).rsplit(".", 1)[-1].upper()
    tld = "GB" if tld == "UK" else tld
    return tld if len(tld) == 2 and tld in phonenumbers.SUPPORTED_REGIONS else None


def phone_e164(raw: str, region: str | None) -> str | None:
    """An international form the catalog accepts; national numbers only when the region is known."""
    number = unquote(raw).strip()
    number = re.sub(r"^\(\s*(\+\d{1,3})\s*\)", r"\1", number)  # "(+44)7758 085585"
    if number.startswith("00"):
        number = "+" + number[2:]
    if number.startswith("+"):
        return number
    if region is None:
        return None
    try:
        parsed = phonenumbers.parse(number, region)
    except phonenumbers.NumberParseException:
        return None
    # Valid, not merely possible: a US toll-free number read as Austrian is possible, and wrong.
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_PLACEHOLDER_LOCALS = {
    "example", "name", "email", "your", "youremail", "yourname", "you", "user", "username", "someone",
    "mailer-daemon", "firstname.lastname", "first.last", "john.doe", "jane.doe", "johndoe", "test",
}  # fmt: skip
_NO_REPLY = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply")
_PLACEHOLDER_DOMAINS = {"example.com", "example.org", "example.net", "domain.com", "yourdomain.com", "email.com"}
_THIRD_PARTY_DOMAIN_PARTS = ("sentry", "wixpress.com", "godaddy.com", "squarespace.com", "wordpress.com")
# Retina image names ("logo@2x.png") look like addresses to a regex.
_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico", ".css", ".js")


def is_company_email(address: str) -> bool:
    """False for placeholders, no-reply senders and third-party service addresses embedded in pages."""
    local, _, domain = address.lower().partition("@")
    return not (
        local in _PLACEHOLDER_LOCALS
        or local.startswith(_NO_REPLY)
        or domain in _PLACEHOLDER_DOMAINS
        or domain.startswith("example.")
        or any(part in domain for part in _THIRD_PARTY_DOMAIN_PARTS)
        or domain.endswith(_FILE_SUFFIXES)
    )


def emails(raw: object, method: str, what: str, ctx: Context) -> Iterator[Clue | None]:
    """Email clues; a mailto may list several addresses ("a@x.com, b@x.com")."""
    if not isinstance(raw, str):
        return
    for part in re.split(r"[,;]", raw.split("?", 1)[0]):
        result = clue("company_email", part.strip(), method, what, ctx)
        if result is not None and is_company_email(result.value):
            yield result


def socials(raw: object, method: str, what: str, ctx: Context) -> Iterator[Clue]:
    """A URL becomes a social profile when the catalog recognises it as one (never a share or intent link)."""
    if not isinstance(raw, str):
        return
    url = raw.replace("/#!/", "/").replace("/#%21/", "/")  # old Twitter hashbang profile links
    if ctx.brand and brand_of(url) == ctx.brand:
        return  # the site's own pages (github.com/blog on github.com) are not its profile
    for field in SOCIAL_FIELDS:
        if result := clue(field, url, method, what, ctx):
            yield result
