"""What a page says in its visible text: emails (obfuscated ones too), phones, addresses, founding and size.

Text heuristics score below structured data and meta tags: a sentence can mention a partner's
phone or "2000 people trained". Each pattern is narrow on purpose; what it misses, a later
provider can still fill.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import lxml.etree
import lxml.html
import phonenumbers

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.model.fields import COUNTRY_NAMES
from glaze_pipeline.core.web.extract.base import Context, compact, email, found

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


def from_text_emails(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    for line in lines:
        for match in _TEXT_EMAIL.finditer(line):
            yield email(match.group(0), 80, "visible text", ctx)
        for pattern in (_BRACKETED_EMAIL, _SPELLED_EMAIL):
            for match in pattern.finditer(line):
                domain = _DOT.sub(".", match.group(2))
                yield email(f"{match.group(1)}@{domain}", 80, "obfuscated email in text", ctx)


# --- phones ---------------------------------------------------------------------------------------------

_PHONE_LABEL = re.compile(
    r"\b(?:tel|tél|telephone|téléphone|telefon|telefono|teléfono|phone|ph|call|office|main|toll[- ]free|t|p)\b"
    r"\.?\s*:?\s*$",
    re.IGNORECASE,
)
_FAX = re.compile(r"\b(?:fax|telefax|f)\b\.?\s*:?\s*$", re.IGNORECASE)


def from_text_phones(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    """Numbers phonenumbers finds valid for the site's region (international ones anywhere); never fax lines."""
    region = ctx.region or "ZZ"  # ZZ: unknown region, so only +country-code numbers match
    for line in lines:
        if not any(ch.isdigit() for ch in line):
            continue
        for match in phonenumbers.PhoneNumberMatcher(line, region, leniency=phonenumbers.Leniency.VALID):
            before = line[max(0, match.start - 25) : match.start]
            if _FAX.search(before):
                continue
            number = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
            confidence = 75 if _PHONE_LABEL.search(before) else 65
            yield found("company_phone", number, confidence, "phone in text", ctx)


# --- addresses: city and country ------------------------------------------------------------------------

_US_STATES = [
    "AL",
    "AK",
    "AZ",
    "AR",
    "CA",
    "CO",
    "CT",
    "DE",
    "DC",
    "FL",
    "GA",
    "HI",
    "ID",
    "IL",
    "IN",
    "IA",
    "KS",
    "KY",
    "LA",
    "ME",
    "MD",
    "MA",
    "MI",
    "MN",
    "MS",
    "MO",
    "MT",
    "NE",
    "NV",
    "NH",
    "NJ",
    "NM",
    "NY",
    "NC",
    "ND",
    "OH",
    "OK",
    "OR",
    "PA",
    "RI",
    "SC",
    "SD",
    "TN",
    "TX",
    "UT",
    "VT",
    "VA",
    "WA",
    "WV",
    "WI",
    "WY",
]
_CA_PROVINCES = ["AB", "BC", "MB", "NB", "NL", "NS", "NT", "NU", "ON", "PE", "QC", "SK", "YT"]
_AU_STATES = ["NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT"]
_STREET_WORDS = {
    "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "drive", "dr", "suite", "ste", "floor",
    "way", "lane", "ln", "parkway", "pkwy", "highway", "hwy", "court", "ct", "place", "pl", "box", "unit", "center",
    "centre", "building", "plaza", "square", "sq", "circle", "terrace", "crescent", "close", "nw", "ne", "sw", "se",
}  # fmt: skip
_PLACE = r"[A-Z][A-Za-z.'\-]+(?:\s+[A-Z][A-Za-z.'\-]+){0,3}"
_US_ADDRESS = re.compile(rf"({_PLACE}),?\s+({'|'.join(_US_STATES)})\.?,?\s+\d{{5}}(?:-\d{{4}})?\b")
_CA_ADDRESS = re.compile(rf"({_PLACE}),?\s+({'|'.join(_CA_PROVINCES)})\.?,?\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d\b")
_AU_ADDRESS = re.compile(rf"({_PLACE}),?\s+({'|'.join(_AU_STATES)})\s+\d{{4}}\b")
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
_DE_ADDRESS = re.compile(r"\b(?:D-)?\d{5}\s+([A-ZÄÖÜ][a-zäöüß]+(?:[\s\-][A-ZÄÖÜ][a-zäöüß]+)?)\b")
_UK_COUNTIES = {
    "west midlands", "greater london", "surrey", "kent", "essex", "middlesex", "berkshire", "hertfordshire",
    "lancashire", "yorkshire", "west yorkshire", "south yorkshire", "greater manchester", "warwickshire", "uk",
    "england", "scotland", "wales", "united kingdom",
}  # fmt: skip
_COUNTRY_AFTER_PLACE = re.compile(
    rf"({_PLACE}),\s*("
    + "|".join(re.escape(n.title()) for n in sorted(COUNTRY_NAMES, key=len, reverse=True) if len(n) > 3)
    + r")\b"
)


def _city(raw: str) -> str | None:
    """The place name at the end of an address fragment: street words and numbers before it dropped."""
    words = raw.split()
    while words and (words[0].lower().strip(".,") in _STREET_WORDS or not words[0][0].isupper()):
        words = words[1:]
    for i in range(len(words) - 1, -1, -1):  # only the words after the last street word
        if words[i].lower().strip(".,") in _STREET_WORDS:
            words = words[i + 1 :]
            break
    city = " ".join(words).strip(" ,.")
    return city if city and len(city) <= 40 else None


def from_addresses(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    for line in lines:
        for pattern, country in ((_US_ADDRESS, "US"), (_CA_ADDRESS, "CA"), (_AU_ADDRESS, "AU")):
            for match in pattern.finditer(line):
                yield found("company_city", _city(match.group(1)), 70, f"{country} postal address", ctx)
                yield found("company_country", country, 75, f"{country} postal address", ctx)
        for match in _UK_POSTCODE.finditer(line):
            before = [p.strip() for p in re.split(r"[,\n]", line[: match.start()]) if p.strip()]
            while before and before[-1].lower() in _UK_COUNTIES:
                before.pop()
            if before and re.fullmatch(_PLACE, before[-1].split(" ", 1)[-1] if before[-1][0].isdigit() else before[-1]):
                yield found("company_city", _city(before[-1]), 65, "UK postcode address", ctx)
            yield found("company_country", "GB", 70, "UK postcode address", ctx)
        if ctx.region in ("DE", "AT", "CH"):
            for match in _DE_ADDRESS.finditer(line):
                yield found("company_city", match.group(1), 65, "postcode and town", ctx)
        for match in _COUNTRY_AFTER_PLACE.finditer(line):
            yield found("company_city", _city(match.group(1)), 60, "place, country", ctx)
            yield found("company_country", match.group(2), 65, "place, country", ctx)


# --- founding year, size --------------------------------------------------------------------------------

_FOUNDED_STRONG = (
    r"founded|established|incorporated|gegründet|gegruendet|fondée|fondé|fundada|fundado|fondata|fondato|"
    r"opgericht|grundat|grundad|założona|założony"
)
_FOUNDED_WEAK = r"since|est\.|est|seit|depuis|desde|dal|sinds|sedan|od"
_FOUNDED = re.compile(
    rf"\b({_FOUNDED_STRONG}|{_FOUNDED_WEAK})\s+(?:in\s+|en\s+|im\s+(?:jahre?\s+)?|em\s+|nel\s+|the\s+year\s+|w\s+roku\s+)?(1[6-9]\d\d|20\d\d)\b",
    re.IGNORECASE,
)
_NOT_FOUNDING = re.compile(
    r"\b(?:member|customer|client|partner|user|updated|published|copyright|online|open)\s*$", re.IGNORECASE
)


def from_founding(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    for line in lines:
        for match in _FOUNDED.finditer(line):
            if _NOT_FOUNDING.search(line[max(0, match.start() - 15) : match.start()]):
                continue
            strong = re.fullmatch(_FOUNDED_STRONG, match.group(1), re.IGNORECASE) is not None
            yield found("company_founded_year", match.group(2), 75 if strong else 65, f'"{match.group(1)} <year>"', ctx)


_STAFF_NOUNS = (
    r"employees|full[- ]time employees|staff members|staff|team members|employés|salariés|collaborateurs|"
    r"mitarbeiter(?:innen)?|mitarbeitende|beschäftigte|empleados|trabajadores|dipendenti|medewerkers|anställda|"
    r"ansatte|työntekijää|pracowników|funcionários"
)
_VAGUE_NOUNS = r"people|professionals|associates|experts|specialists|colleagues|workers"
_HEADCOUNT = re.compile(
    rf"\b(\d{{1,3}}(?:[,.'\s]\d{{3}})+|\d{{1,6}})\s*\+?\s*({_STAFF_NOUNS}|{_VAGUE_NOUNS})\b", re.IGNORECASE
)
_EMPLOYS = re.compile(
    r"\b(?:employ\w*|team of|staff of|workforce of|workforce|headcount|beschäftigt|emploie)\b", re.IGNORECASE
)
_NOT_STAFF = re.compile(
    r"\b(?:trained|served|helped|reached|certified|attended|visited|use|using|rely|trust|customers?|clients?|"
    r"users?|students?|patients?|visitors?|members?|subscribers?|downloads?|countries|years?)\b",
    re.IGNORECASE,
)


def from_headcount(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    """Employee counts only where the page states one ("120 employees", "a team of 40 people").

    Never "2000 people trained": counts of customers, users or trainees are not staff.
    """
    for line in lines:
        for match in _HEADCOUNT.finditer(line):
            before, after = line[max(0, match.start() - 40) : match.start()], line[match.end() : match.end() + 25]
            if _NOT_STAFF.search(after.split(".")[0]) or re.search(r"\b(?:trained|served|helped)\b", before, re.I):
                continue
            vague = re.fullmatch(_VAGUE_NOUNS, match.group(2), re.IGNORECASE) is not None
            if vague and not _EMPLOYS.search(before):
                continue
            yield found("company_employee_count", match.group(1), 65 if vague else 75, f'"<n> {match.group(2)}"', ctx)


# --- names ----------------------------------------------------------------------------------------------

LEGAL_FORM = (
    r"GmbH(?:\s*&\s*Co\.?\s*KG)?|AG|KG|e\.K\.|Ltd\.?|Limited|LLC|L\.L\.C\.|Inc\.?|Incorporated|Corp\.?|Corporation|"
    r"S\.A\.?|SARL|SAS|S\.L\.|B\.V\.|N\.V\.|Sp\.\s?z\s?o\.o\.|AB|A/S|ApS|Oy|plc|PLC|LLP|Pty\.?\s?Ltd\.?|S\.r\.l\.|S\.p\.A\."
)
_COPYRIGHT = re.compile(
    r"(?:©|\(c\)|copyright)\s*(?:©\s*)?(?:\d{4}(?:\s*[-–]\s*(?:\d{4}|present))?\s*,?\s*)?(?:by\s+)?"
    r"([A-Z][\w&.,'’\- ]{1,70}?)\s*(?:\.\s*)?"
    r"(?=all rights|alle rechte|tous droits|todos los derechos|\||$|\s-\s|\d{4})",
    re.IGNORECASE,
)
_LEGAL_NAME = re.compile(rf"\b((?:[A-ZÄÖÜ][\w&'’.\-]*\s+){{0,4}}[A-ZÄÖÜ][\w&'’.\-]*,?\s+(?:{LEGAL_FORM}))(?![\w])")
_CREDIT = re.compile(r"\b(?:design|designed|website|site|powered|developed|hosted|built)\s+by\b", re.IGNORECASE)


def _clean_name(raw: str) -> str:
    name = re.sub(r"\s+", " ", raw).strip(" ,.-–|")
    return re.sub(r"^(?:copyright|©)\s*", "", name, flags=re.IGNORECASE)


def from_names_in_text(lines: list[str], ctx: Context) -> Iterator[Found | None]:
    """The copyright holder and legal-form names ("Acme Widgets Ltd"); those matching the domain rank higher."""
    for line in lines:
        if _CREDIT.search(line):
            continue
        for match in _COPYRIGHT.finditer(line):
            name = _clean_name(match.group(1))
            if 2 <= len(name) <= 70 and not name.lower().startswith(("all rights", "the ")):
                ours = bool(ctx.brand) and ctx.brand in compact(name)
                yield found("company_name", name, 65 if ours else 50, "copyright line", ctx)
        for match in _LEGAL_NAME.finditer(line):
            name = _clean_name(match.group(1))
            if ctx.brand and ctx.brand[:4] in compact(name):
                yield found("company_name", name, 60, "legal-form name in text", ctx)


TEXT_METHODS = (from_text_emails, from_text_phones, from_addresses, from_founding, from_headcount, from_names_in_text)
