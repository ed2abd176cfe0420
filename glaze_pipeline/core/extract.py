"""Company facts from fetched website pages: JSON-LD, OpenGraph/meta, the title, links and visible text.

Pure functions over bytes already downloaded: no network, no environment. Every method reports every
value it sees with its own confidence; choosing between them is the merge step's job.
"""

from __future__ import annotations

import codecs
import json
import re
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

import lxml.etree
import lxml.html
import phonenumbers

from glaze_pipeline.core.candidates import Found
from glaze_pipeline.core.fields import CATALOG

EVIDENCE_LIMIT = 300
# Browsers sniff the charset from the first 1024 bytes; pages in the wild are sloppier, so look further.
_SNIFF_BYTES = 4096


@dataclass(frozen=True)
class Page:
    url: str  # final URL of the page, after redirects
    body: bytes
    content_type: str | None = None  # the HTTP Content-Type header, may carry charset


@dataclass(frozen=True)
class _Context:
    """What every extraction method may know about the page besides its tree."""

    page_url: str
    brand: str  # the site's domain label, compacted ("helixbiotech"), for picking the brand out of a title
    region: str | None  # ISO-2 region from the page's ccTLD, to read national phone numbers


# One extraction method: a page's tree in, findings out (None where the catalog rejected a raw value).
Method = Callable[[lxml.html.HtmlElement, _Context], Iterator[Found | None]]


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


def _parse(page: Page) -> lxml.html.HtmlElement | None:
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


def _found(field: str, raw: object, confidence: int, what: str, ctx: _Context) -> Found | None:
    """A catalog-normalised value with its evidence, or None when the catalog rejects it."""
    value = CATALOG[field].clean(raw)
    if value is None:
        return None
    return Found(field, value, confidence, f"{what} @ {ctx.page_url}"[:EVIDENCE_LIMIT])


def _compact(text: str) -> str:
    """Lowercase ASCII letters and digits only, accents folded: "Café Lumière" -> "cafelumiere"."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _host(url: str) -> str:
    try:
        return (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


_SECOND_LEVEL = {"co", "com", "org", "net", "ac", "gov", "edu", "ltd", "plc"}


def _brand_of(url: str) -> str:
    """The registrable label of a host ("www.acme.co.uk" -> "acme"), without a public-suffix list."""
    labels = _host(url).removeprefix("www.").split(".")
    if not re.search(r"[a-z]", labels[-1]):  # an IP address names no brand
        return ""
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return _compact(labels[-3])
    return _compact(labels[-2]) if len(labels) >= 2 else _compact(labels[0])


def _region_of(url: str) -> str | None:
    tld = _host(url).rsplit(".", 1)[-1].upper()
    tld = "GB" if tld == "UK" else tld
    return tld if len(tld) == 2 and tld in phonenumbers.SUPPORTED_REGIONS else None


def _phone(raw: str, region: str | None) -> str | None:
    """An international form the catalog accepts; national numbers only when the region is known."""
    number = unquote(raw).strip()
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
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


_PLACEHOLDER_LOCALS = {
    "example", "name", "email", "your", "youremail", "yourname", "you", "user", "username", "someone",
    "mailer-daemon",
}  # fmt: skip
_NO_REPLY = ("noreply", "no-reply", "no_reply", "donotreply", "do-not-reply", "do_not_reply")
_PLACEHOLDER_DOMAINS = {"example.com", "example.org", "example.net", "domain.com", "yourdomain.com"}
_THIRD_PARTY_DOMAIN_PARTS = ("sentry", "wixpress.com")
# Retina image names ("logo@2x.png") look like addresses to a regex.
_FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".avif", ".ico", ".css", ".js")


def _is_company_email(address: str) -> bool:
    """False for placeholders, no-reply senders and third-party service addresses embedded in pages."""
    local, _, domain = address.lower().partition("@")
    return not (
        local in _PLACEHOLDER_LOCALS
        or local.startswith(_NO_REPLY)
        or domain in _PLACEHOLDER_DOMAINS
        or any(part in domain for part in _THIRD_PARTY_DOMAIN_PARTS)
        or domain.endswith(_FILE_SUFFIXES)
    )


def _email(raw: object, confidence: int, what: str, ctx: _Context) -> Found | None:
    found = _found("company_email", raw, confidence, what, ctx)
    return found if found and _is_company_email(found.value) else None


def _socials(raw: object, confidence: int, what: str, ctx: _Context) -> Iterator[Found]:
    """A URL becomes a LinkedIn or X/Twitter company profile when the catalog recognises it as one."""
    for field in ("company_linkedin", "company_twitter"):
        if found := _found(field, raw, confidence, what, ctx):
            yield found


# --- JSON-LD --------------------------------------------------------------------------------------------

_ORG_TYPES = {"Organization", "Corporation", "LocalBusiness", "Company"}
# Wrappers CMSs leave around the JSON (HTML comments, CDATA markers) and hand-written trailing commas.
_JSON_WRAPPER = re.compile(r"^\s*(?://\s*)?(?:<!--|<!\[CDATA\[)|(?://\s*)?(?:-->|\]\]>)\s*$")
_TRAILING_COMMA = re.compile(r",\s*([}\]])")


def _json_repairs(text: str) -> Iterator[str]:
    """The block as written, then progressively repaired; each is tried only if the one before fails."""
    yield text
    unwrapped = _JSON_WRAPPER.sub("", text)
    yield unwrapped
    yield _TRAILING_COMMA.sub(r"\1", unwrapped)


def _json_ld_blocks(doc: lxml.html.HtmlElement) -> Iterator[object]:
    for script in doc.iter("script"):
        if (script.get("type") or "").strip().lower() != "application/ld+json" or not script.text:
            continue
        for text in _json_repairs(script.text):
            try:
                # strict=False: raw newlines inside strings are the commonest JSON-LD mistake.
                yield json.loads(text, strict=False)
                break
            except ValueError:
                continue


def _nodes(data: object) -> Iterator[dict[str, object]]:
    """Top-level nodes of a JSON-LD block: itself, list items and @graph members."""
    if isinstance(data, list):
        for item in data:
            yield from _nodes(item)
    elif isinstance(data, dict):
        yield data
        yield from _nodes(data.get("@graph"))


def _is_organization(node: dict[str, object]) -> bool:
    types = node.get("@type")
    for raw in types if isinstance(types, list) else [types]:
        if isinstance(raw, str):
            name = re.split(r"[/:#]", raw)[-1]
            if name in _ORG_TYPES or name.endswith(("Organization", "Business")):
                return True
    return False


def _strings(value: object) -> Iterator[str]:
    """Scalar text of a JSON-LD value: plain, numeric, {"@value": ...} or a list of those."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and value.is_integer():
        yield str(int(value))  # 85.0 employees is 85, not "850" once the count normaliser drops the dot
    elif isinstance(value, str | int | float):
        yield str(value)
    elif isinstance(value, dict) and "@value" in value:
        yield from _strings(value["@value"])
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _dicts(value: object) -> Iterator[dict[str, object]]:
    if isinstance(value, dict):
        yield value
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, dict):
                yield item


def _organization_facts(node: dict[str, object], ctx: _Context) -> Iterator[Found | None]:
    kind = "json-ld Organization"
    simple = (
        ("name", "company_name", 90),
        ("legalName", "company_name", 85),
        ("description", "company_description", 90),
        ("foundingDate", "company_founded_year", 90),
        ("url", "company_website", 85),
    )
    for key, field, confidence in simple:
        for raw in _strings(node.get(key)):
            yield _found(field, raw, confidence, f"{kind}.{key}", ctx)
    for raw in _strings(node.get("email")):
        yield _email(raw, 90, f"{kind}.email", ctx)
    for raw in _strings(node.get("telephone")):
        yield _found("company_phone", _phone(raw, ctx.region), 85, f"{kind}.telephone", ctx)
    for key in ("sameAs", "url"):
        for raw in _strings(node.get(key)):
            yield from _socials(raw, 90, f"{kind}.{key}", ctx)
    employees = node.get("numberOfEmployees")
    for value in (employees, *(d.get("value") for d in _dicts(employees))):
        for raw in _strings(value):
            yield _found("company_employee_count", raw, 85, f"{kind}.numberOfEmployees", ctx)
    for address in _dicts(node.get("address")):
        for raw in _strings(address.get("addressLocality")):
            yield _found("company_city", raw, 85, f"{kind}.address.addressLocality", ctx)
        country = address.get("addressCountry")
        for value in (country, *(d.get("name") for d in _dicts(country))):
            for raw in _strings(value):
                yield _found("company_country", raw, 85, f"{kind}.address.addressCountry", ctx)


def from_json_ld(doc: lxml.html.HtmlElement, ctx: _Context) -> Iterator[Found | None]:
    for block in _json_ld_blocks(doc):
        for node in _nodes(block):
            if _is_organization(node):
                yield from _organization_facts(node, ctx)


# --- OpenGraph / meta -----------------------------------------------------------------------------------


def _meta(doc: lxml.html.HtmlElement) -> Iterator[tuple[str, str]]:
    """(lowercased property-or-name, content) for every <meta> that has both."""
    for meta in doc.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = meta.get("content")
        if key and content:
            yield key, content


def from_meta(doc: lxml.html.HtmlElement, ctx: _Context) -> Iterator[Found | None]:
    for key, content in _meta(doc):
        if key == "og:site_name":
            yield _found("company_name", content, 80, "meta og:site_name", ctx)
        elif key in ("description", "og:description"):
            yield _found("company_description", content, 75, f"meta {key}", ctx)
        elif key == "og:url":
            yield _found("company_website", content, 70, "meta og:url", ctx)
        elif key == "twitter:site":
            handle = content.strip()
            url = f"https://x.com/{handle[1:]}" if handle.startswith("@") else handle
            yield _found("company_twitter", url, 75, "meta twitter:site", ctx)


# --- <title> --------------------------------------------------------------------------------------------

# Spaced dashes only: "Hewlett-Packard" is one name.
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|·•»]\s+|\s*[|•»]\s*|:\s+")
_GENERIC_TITLES = {"home", "homepage", "home page", "welcome", "index", "about", "about us", "contact"}
_WELCOME = re.compile(r"^welcome to\s+", re.IGNORECASE)
_BRAND_MAX_WORDS = 6


def _brand_from_title(title: str, brand: str) -> str | None:
    parts = [_WELCOME.sub("", p).strip() for p in _TITLE_SEPARATORS.split(title)]
    parts = [p for p in parts if p and p.lower() not in _GENERIC_TITLES]
    if not parts:
        return None

    def matches_domain(part: str) -> bool:
        compact = _compact(part)
        if not brand or not compact:
            return False
        return brand in compact or (len(compact) >= 3 and compact in brand)

    named = [p for p in parts if matches_domain(p)]
    if named:
        return min(named, key=len)
    # Taglines are sentences; brands are short. min() keeps the first of equally short parts.
    short = [p for p in parts if len(p.split()) <= _BRAND_MAX_WORDS]
    return min(short, key=len) if short else None


def from_title(doc: lxml.html.HtmlElement, ctx: _Context) -> Iterator[Found | None]:
    title = doc.find(".//title")
    if title is not None and title.text_content().strip():
        yield _found("company_name", _brand_from_title(title.text_content(), ctx.brand), 55, "title", ctx)


# --- links ----------------------------------------------------------------------------------------------


def from_links(doc: lxml.html.HtmlElement, ctx: _Context) -> Iterator[Found | None]:
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        lowered = href.lower()
        if lowered.startswith("mailto:"):
            yield _email(unquote(href[len("mailto:") :]), 75, "mailto link", ctx)
        elif lowered.startswith("tel:"):
            yield _found("company_phone", _phone(href[len("tel:") :], ctx.region), 70, "tel link", ctx)
        elif href:
            yield from _socials(href, 80, "link", ctx)


# --- visible text ---------------------------------------------------------------------------------------

_TEXT_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,63}(?![A-Za-z0-9\-])")
_VISIBLE_TEXT = "//body//text()[not(ancestor::script) and not(ancestor::style) and not(ancestor::template)]"


def from_visible_text(doc: lxml.html.HtmlElement, ctx: _Context) -> Iterator[Found | None]:
    text = " ".join(doc.xpath(_VISIBLE_TEXT))
    for match in _TEXT_EMAIL.finditer(text):
        yield _email(match.group(0), 65, "visible text", ctx)


# --- entry point ----------------------------------------------------------------------------------------

# Order is only the order of results; confidence, not position, decides what wins.
METHODS: tuple[Method, ...] = (
    from_json_ld,
    from_meta,
    from_title,
    from_links,
    from_visible_text,
)


def extract(pages: Sequence[Page], base_url: str) -> list[Found]:
    """Every company fact every method finds on the pages; [] for pages that are not HTML at all."""
    brand = _brand_of(base_url)
    results: list[Found] = []
    seen: set[Found] = set()
    for page in pages:
        doc = _parse(page)
        if doc is None:
            continue
        ctx = _Context(page_url=page.url, brand=brand, region=_region_of(page.url) or _region_of(base_url))
        for method in METHODS:
            for found in method(doc, ctx):
                # The same link in header and footer is one finding, not two votes.
                if found is not None and found not in seen:
                    seen.add(found)
                    results.append(found)
    return results
