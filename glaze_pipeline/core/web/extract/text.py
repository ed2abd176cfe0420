"""What a page says in its visible text: emails (obfuscated ones too), phones, founding, size and names.

Each pattern is narrow on purpose, and reports what surrounds a value (a "Fax" label, a
"Headquarters" heading, another organisation's address nearby) as traits: the choice step
weighs them, and what a pattern misses, a later provider can still fill. Postal addresses
live in `addresses`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import lxml.etree
import lxml.html
import phonenumbers

from glaze_pipeline.core.web.extract.addresses import foreign_nearby, from_addresses, named_offices, setting
from glaze_pipeline.core.web.extract.base import Clue, Context, brand_of, clue, compact, emails

# Not "head": libxml2 leaves HTML5 elements it does not know (<footer>) there when no <body> came first.
_SKIPPED = {"script", "style", "template", "noscript", "title", "select", "option"}
_BLOCKS = {
    "p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6", "address", "section",
    "footer", "header", "table", "ul", "ol", "dd", "dt", "article", "aside", "nav", "form", "hr", "blockquote",
}  # fmt: skip


def visible_lines(doc: lxml.html.HtmlElement) -> list[str]:
    """The page's visible text, one line per block (paragraph, cell, <br>), whitespace collapsed."""
    parts: list[str] = []
    skipping = 0
    for event, element in lxml.etree.iterwalk(doc, events=("start", "end")):
        tag = element.tag if isinstance(element.tag, str) else ""
        if event == "start":
            if tag in _SKIPPED:
                skipping += 1
            elif not skipping and element.text and tag:
                parts.append(element.text)
            continue
        if tag in _SKIPPED:
            skipping -= 1
        elif tag in _BLOCKS and not skipping:
            parts.append("\n")
        if element.tail and not skipping:
            parts.append(element.tail)
    lines = (" ".join(line.split()) for line in "".join(parts).split("\n"))
    return [line for line in lines if line]


# --- emails ---------------------------------------------------------------------------------------------

_TEXT_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,63}(?![A-Za-z0-9\-])")
_OPEN, _CLOSE = r"\s*[\[\(\{<]\s*", r"\s*[\]\)\}>]\s*"
_DOT_WORD = rf"(?:{_OPEN}(?:dot|\.){_CLOSE}|\s+dot\s+)"
# "name [at] acme [dot] com", "name(at)acme.com": a bracketed at, any dot.
_BRACKETED_EMAIL = re.compile(
    rf"([A-Za-z0-9._%+\-]+){_OPEN}(?:at|@){_CLOSE}([A-Za-z0-9\-]+(?:(?:{_DOT_WORD}|\.)[A-Za-z0-9\-]+)*(?:{_DOT_WORD}|\.)[A-Za-z]{{2,10}})\b",
    re.IGNORECASE,
)
# "name at acme dot com": a bare "at" only counts with a spelled-out "dot" (else "evaluated at apple.com").
_SPELLED_EMAIL = re.compile(
    rf"([A-Za-z0-9._%+\-]+)\s+at\s+([A-Za-z0-9\-]+(?:{_DOT_WORD}[A-Za-z0-9\-]+)*{_DOT_WORD}[A-Za-z]{{2,10}})\b",
    re.IGNORECASE,
)
_DOT = re.compile(rf"{_OPEN}(?:dot|\.){_CLOSE}|\s+dot\s+", re.IGNORECASE)
# "woodsins@woodsins.comThis email address is being protected": a glued word is not part of the domain.
_GLUED_WORD = re.compile(r"(\.[a-z]{2,24}?)(?:This|Please|Email|Phone|Tel|Fax|Call|Or)[A-Za-z]*$")


def _their_website_nearby(lines: list[str], index: int, address: str, ctx: Context) -> bool:
    """An address on another domain whose website the same block gives: that organisation's contact block."""
    domain = address.rsplit("@", 1)[-1].lower()
    if domain == ctx.site_host or domain.endswith("." + ctx.site_host) or brand_of("http://" + domain) == ctx.brand:
        return False
    website = re.compile(rf"(?:www\.|https?://|website:?\s*){re.escape(domain)}", re.IGNORECASE)
    return any(website.search(line) for line in lines[max(0, index - 3) : index + 4])


def from_text_emails(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    for index, line in enumerate(lines):
        for match in _TEXT_EMAIL.finditer(line):
            address = _GLUED_WORD.sub(r"\1", match.group(0))
            for found in emails(address, "text", "visible text", ctx):
                if found is not None and _their_website_nearby(lines, index, found.value, ctx):
                    found = replace(found, traits=found.traits | {"foreign"})
                yield found
        for pattern in (_BRACKETED_EMAIL, _SPELLED_EMAIL):
            for match in pattern.finditer(line):
                domain = _DOT.sub(".", match.group(2))
                yield from emails(f"{match.group(1)}@{domain}", "text", "obfuscated email in text", ctx)


# --- phones ---------------------------------------------------------------------------------------------

_PHONE_WORDS = (
    r"tel|tél|telephone|téléphone|telefon|telefono|teléfono|phone|ph|call|office|main|general|voice|"
    r"toll[- ]free|enquiries|t|p"
)
_PHONE_LABEL = re.compile(rf"\b(?:{_PHONE_WORDS})\b\.?\s*(?:number|no\.?)?\s*[:\-]?\s*(?:\(?\w+\)?\s*)?$", re.I)
_FAX_BEFORE = re.compile(r"\b(?:fax|telefax|facsimile|f)\b\.?\s*(?:number|no\.?)?\s*[:\-]?\s*$", re.IGNORECASE)
_FAX_AFTER = re.compile(r"^\s*[\(\[]?\s*(?:fax|telefax|facsimile)\b", re.IGNORECASE)
_DIGIT = re.compile(r"\d")
_BARE_LABEL = re.compile(rf"^(?:(?P<fax>fax|telefax)|{_PHONE_WORDS})\.?\s*(?:number|no\.?)?\s*:?$", re.IGNORECASE)


def _phone_traits(
    lines: list[str], index: int, before: str, after: str, ctx: Context, number: str, offices: dict[int, bool]
) -> set[str]:
    """What labels the number: a fax label before or after it, a phone label, a headquarters heading above."""
    traits = set()
    previous = _BARE_LABEL.match(lines[index - 1]) if index and not before.strip() else None
    if _FAX_BEFORE.search(before) or _FAX_AFTER.search(after) or (previous and previous.group("fax")):
        traits.add("fax")
    elif _PHONE_LABEL.search(before) or previous:
        traits.add("labelled")
    traits |= setting(lines, index, above=8, offices=offices)
    if foreign_nearby(lines, index, ctx):
        traits.add("foreign")
    if ctx.region_guessed and not number.lstrip().startswith(("+", "00")):
        traits.add("guessed-region")
    return traits


def from_text_phones(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    """Numbers phonenumbers finds valid for the site's region (international ones anywhere), with their labels."""
    region = ctx.region or "ZZ"  # ZZ: unknown region, so only +country-code numbers match
    offices = named_offices(lines)
    for index, line in enumerate(lines):
        # Without a region only a number written with its plus sign (or a full-width one) can match.
        if _DIGIT.search(line) is None or (region == "ZZ" and "+" not in line and "\uff0b" not in line):
            continue
        for match in phonenumbers.PhoneNumberMatcher(line, region, leniency=phonenumbers.Leniency.VALID):
            before, after = line[max(0, match.start - 30) : match.start], line[match.end : match.end + 15]
            if re.search(r"\b(?:since|seit|depuis|founded|©)\s*$|\d[./]$", before, re.IGNORECASE):
                continue  # a year or a date read as a number
            traits = _phone_traits(lines, index, before, after, ctx, match.raw_string, offices)
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            yield clue("company_phone", number, "text", "phone in text", ctx, traits)


# --- founding year, size --------------------------------------------------------------------------------

_FOUNDED_STRONG = (
    r"founded|co-founded|established|incorporated|formed|gegründet|gegruendet|fondée|fondé|fundada|fundado|"
    r"fondata|fondato|opgericht|grundat|grundad|założona|założony"
)
_FOUNDED_WEAK = r"since|est\.|est|seit|depuis|desde|dal|sinds|sedan|od"
_YEAR = r"(1[6-9]\d\d|20\d\d)"
_FOUNDED = re.compile(
    rf"\b({_FOUNDED_STRONG}|{_FOUNDED_WEAK})\s+(?:in\s+|en\s+|im\s+(?:jahre?\s+)?|em\s+|nel\s+|the\s+year\s+|w\s+roku\s+)?{_YEAR}\b",
    re.IGNORECASE,
)
# "co-founded Acme in 2000", "Founded by Stanford alumni in 2000": a few words between the verb and the year.
_FOUNDED_LATER = re.compile(rf"\b({_FOUNDED_STRONG})\s+(?:[\w&'’.\-]+\s+){{1,4}}in\s+{_YEAR}\b", re.IGNORECASE)
_FOUNDED_HEADING = re.compile(
    rf"^(?:year\s+)?(?:{_FOUNDED_STRONG}|{_FOUNDED_WEAK})(?:\s+in)?\s*:?$|^gründungsjahr:?$", re.IGNORECASE
)
_NOT_FOUNDING = re.compile(
    r"\b(?:member|customer|client|partner|user|updated|published|copyright|online|open|verified|listed|"
    r"trading|operating|working|serving|selling)\s*$",
    re.IGNORECASE,
)


def from_founding(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    about = {"about"} if ctx.is_about else set()
    for index, line in enumerate(lines):
        for pattern in (_FOUNDED, _FOUNDED_LATER):
            for match in pattern.finditer(line):
                if _NOT_FOUNDING.search(line[max(0, match.start() - 15) : match.start()]):
                    continue
                strong = re.fullmatch(_FOUNDED_STRONG, match.group(1), re.IGNORECASE) is not None
                traits = about | {"strong" if strong else "weak"}
                yield clue("company_founded_year", match.group(2), "text", f'"{match.group(1)} <year>"', ctx, traits)
        # A facts table: "Founded" on one line, "1949" on the next.
        year = re.match(rf"^{_YEAR}\b", lines[index + 1]) if index + 1 < len(lines) else None
        if year and _FOUNDED_HEADING.match(line):
            yield clue("company_founded_year", year.group(1), "text", f'"{line}" heading', ctx, about | {"kv"})


_STAFF_NOUNS = (
    r"employees|full[- ]time employees|staff members|staff|team members|employés|salariés|collaborateurs|"
    r"mitarbeiter(?:innen)?|mitarbeitende|beschäftigte|empleados|trabajadores|dipendenti|medewerkers|anställda|"
    r"ansatte|työntekijää|pracowników|funcionários"
)
_VAGUE_NOUNS = r"people|professionals|associates|experts|specialists|colleagues|workers"
_HEADCOUNT = re.compile(
    rf"\b(\d{{1,3}}(?:[,.'\s]\d{{3}})+|\d{{1,6}})\s*\+?\s*({_STAFF_NOUNS}|{_VAGUE_NOUNS})\b", re.IGNORECASE
)
_HEADCOUNT_HEADING = re.compile(rf"^(?:number of\s+)?(?:{_STAFF_NOUNS})\s*:?$", re.IGNORECASE)
_EMPLOYS = re.compile(
    r"\b(?:employ\w*|team of|staff of|workforce of|workforce|headcount|beschäftigt|emploie)\b", re.IGNORECASE
)
_NOT_STAFF = re.compile(
    r"\b(?:trained|served|helped|reached|certified|attended|visited|use|using|rely|trust|customers?|clients?|"
    r"users?|students?|patients?|visitors?|members?|subscribers?|downloads?|countries|years?|follower\w*)\b",
    re.IGNORECASE,
)


def from_headcount(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    """Employee counts only where the page states one ("120 employees", "a team of 40 people").

    Never "2000 people trained" nor a directory's "> 10.000 employees" band about other companies.
    """
    for index, line in enumerate(lines):
        for match in _HEADCOUNT.finditer(line):
            before, after = line[max(0, match.start() - 40) : match.start()], line[match.end() : match.end() + 25]
            if _NOT_STAFF.search(after.split(".")[0]) or re.search(r"\b(?:trained|served|helped)\b", before, re.I):
                continue
            if re.search(r"[<>≥≤–-]\s*$", before):
                continue  # a size band ("> 10.000", "51-200"), not a count
            vague = re.fullmatch(_VAGUE_NOUNS, match.group(2), re.IGNORECASE) is not None
            if vague and not _EMPLOYS.search(before):
                continue
            traits = {"vague"} if vague else set()
            yield clue("company_employee_count", match.group(1), "text", f'"<n> {match.group(2)}"', ctx, traits)
        count = (
            re.match(r"^(\d{1,3}(?:[,.'\s]\d{3})+|\d{1,6})\+?$", lines[index + 1]) if index + 1 < len(lines) else None
        )
        if count and _HEADCOUNT_HEADING.match(line):
            yield clue("company_employee_count", count.group(1), "text", f'"{line}" heading', ctx, {"kv"})


# --- names ----------------------------------------------------------------------------------------------

LEGAL_FORM = (
    r"GmbH(?:\s*&\s*Co\.?\s*KG)?|AG|KG|e\.K\.|Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|Incorporated|Corp\.?|Corporation|"
    r"S\.A\.?|SARL|SAS|S\.L\.|B\.V\.|N\.V\.|Sp\.\s?z\s?o\.o\.|AB|A/S|ApS|Oy|plc|PLC|LLP|Pty\.?\s?Ltd\.?|S\.r\.l\.|S\.p\.A\.|"
    r"SE|Lda\.?|S\.à\.?r\.?l\.?"
)
_COPYRIGHT = re.compile(
    r"(?:©|\(c\)|copyright(?=\s*(?:©|\(c\)|\d{4}|by\b)))\s*(?:©\s*)?(?:\d{4}(?:\s*[-–]\s*(?:\d{4}|present))?\s*,?\s*)?(?:by\s+)?"
    r"([A-Z][\w&.,'’\- ]{1,70}?)\s*(?:\.\s*)?"
    r"(?=all rights|alle rechte|tous droits|todos los derechos|\||$|\s-\s|\d{4}|\.\s+[A-Z0-9])",
    re.IGNORECASE,
)
_LEGAL_NAME = re.compile(rf"\b((?:[A-ZÄÖÜ][\w&'’.\-]*\s+){{0,4}}[A-ZÄÖÜ][\w&'’.\-]*,?\s+(?:{LEGAL_FORM}))(?![\w])")
_CREDIT = re.compile(r"\b(?:design|designed|website|site|powered|developed|hosted|built|seo)\s+by\b", re.IGNORECASE)
# Maps embedded on contact pages carry their own copyright ("Map data ©2014 Google").
_MAP_CREDIT = re.compile(r"map\s*data|kartendaten|картографические|imagery|données cartographiques", re.IGNORECASE)


def _clean_name(raw: str) -> str:
    name = re.sub(r"\s+", " ", raw).strip(" ,.-–|")
    return re.sub(r"^(?:copyright|©)\s*", "", name, flags=re.IGNORECASE)


def from_names_in_text(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    """The copyright holder and legal-form names ("Acme Widgets Ltd"); whether the domain confirms them."""
    for line in lines:
        if _CREDIT.search(line) or _MAP_CREDIT.search(line):
            continue
        for match in _COPYRIGHT.finditer(line):
            name = _clean_name(match.group(1))
            if 2 <= len(name) <= 70 and not name.lower().startswith(("all rights", "the ")):
                ours = bool(ctx.brand) and ctx.brand[:4] in compact(name)
                yield clue("company_name", name, "text", "copyright line", ctx, {"brand"} if ours else ())
        for match in _LEGAL_NAME.finditer(line):
            name = _clean_name(match.group(1))
            if ctx.brand and ctx.brand[:4] in compact(name):
                yield clue("company_name", name, "text", "legal-form name in text", ctx, {"brand", "legal"})


TEXT_METHODS = (from_text_emails, from_text_phones, from_addresses, from_founding, from_headcount, from_names_in_text)
