"""Postal addresses in a page's text: the city, the country and the location as written, read together.

Addresses are spread over lines ("Kalamazoo, Michigan 49002" / "U.S.A."), so each pattern reads a
window of up to four short lines joined by commas. The formats are the world's common ones: US,
Canadian, Australian, British and Irish addresses; "postcode town" (most of Europe) when a country
name, a country prefix ("DE-80335") or the site's region says which country; "town PIN" (India);
"place, [region,] country"; and a "Headquarters" heading followed by "City, Region". What sits
around an address travels on as a trait: a "Headquarters" or a "Branch" heading, a named office listed
after another ("Cortez Office" after "Farmington Office": a branch), another organisation's email or
website (its contact block). Phones in text share these headings.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from glaze_pipeline.core.model.fields import COUNTRY_NAMES, normalise_country
from glaze_pipeline.core.web.extract.base import Clue, Context, brand_of, clue

_US_STATES = {
    "AL": "Alabama", "AK": "Alaska", "AZ": "Arizona", "AR": "Arkansas", "CA": "California", "CO": "Colorado",
    "CT": "Connecticut", "DE": "Delaware", "DC": "District of Columbia", "FL": "Florida", "GA": "Georgia",
    "HI": "Hawaii", "ID": "Idaho", "IL": "Illinois", "IN": "Indiana", "IA": "Iowa", "KS": "Kansas",
    "KY": "Kentucky", "LA": "Louisiana", "ME": "Maine", "MD": "Maryland", "MA": "Massachusetts", "MI": "Michigan",
    "MN": "Minnesota", "MS": "Mississippi", "MO": "Missouri", "MT": "Montana", "NE": "Nebraska", "NV": "Nevada",
    "NH": "New Hampshire", "NJ": "New Jersey", "NM": "New Mexico", "NY": "New York", "NC": "North Carolina",
    "ND": "North Dakota", "OH": "Ohio", "OK": "Oklahoma", "OR": "Oregon", "PA": "Pennsylvania",
    "RI": "Rhode Island", "SC": "South Carolina", "SD": "South Dakota", "TN": "Tennessee", "TX": "Texas",
    "UT": "Utah", "VT": "Vermont", "VA": "Virginia", "WA": "Washington", "WV": "West Virginia", "WI": "Wisconsin",
    "WY": "Wyoming",
}  # fmt: skip
_CA_PROVINCES = {
    "AB": "Alberta", "BC": "British Columbia", "MB": "Manitoba", "NB": "New Brunswick",
    "NL": "Newfoundland and Labrador", "NS": "Nova Scotia", "NT": "Northwest Territories", "NU": "Nunavut",
    "ON": "Ontario", "PE": "Prince Edward Island", "QC": "Quebec", "SK": "Saskatchewan", "YT": "Yukon",
}  # fmt: skip
_AU_STATES = ["NSW", "VIC", "QLD", "WA", "SA", "TAS", "ACT", "NT"]
_UK_COUNTIES = {
    "avon", "bedfordshire", "berkshire", "buckinghamshire", "cambridgeshire", "cheshire", "cornwall", "cumbria",
    "derbyshire", "devon", "dorset", "durham", "east sussex", "essex", "gloucestershire", "greater london",
    "greater manchester", "hampshire", "herefordshire", "hertfordshire", "kent", "lancashire", "leicestershire",
    "lincolnshire", "merseyside", "middlesex", "norfolk", "northamptonshire", "northumberland", "nottinghamshire",
    "oxfordshire", "shropshire", "somerset", "staffordshire", "suffolk", "surrey", "sussex", "tyne and wear",
    "warwickshire", "west midlands", "west sussex", "wiltshire", "worcestershire", "yorkshire", "north yorkshire",
    "south yorkshire", "west yorkshire", "east yorkshire", "uk", "england", "scotland", "wales", "united kingdom",
    "great britain", "gb", "northern ireland",
}  # fmt: skip
_STREET_WORDS = {
    "street", "st", "avenue", "ave", "road", "rd", "boulevard", "blvd", "drive", "dr", "suite", "ste", "floor",
    "way", "lane", "ln", "parkway", "pkwy", "highway", "hwy", "court", "ct", "place", "pl", "box", "unit", "center",
    "centre", "building", "plaza", "square", "sq", "circle", "terrace", "crescent", "cres", "close", "nw", "ne",
    "sw", "se", "park", "house", "estate", "andar", "po",
}  # fmt: skip
# Postcode formats of countries that write "postcode town", to tell an address from any number before a word.
_POSTCODES = {
    "DE": r"\d{5}", "FR": r"\d{5}", "ES": r"\d{5}", "IT": r"\d{5}", "FI": r"\d{5}", "MX": r"\d{5}",
    "AT": r"\d{4}", "CH": r"\d{4}", "BE": r"\d{4}", "DK": r"\d{4}", "NO": r"\d{4}", "LU": r"\d{4}", "HU": r"\d{4}",
    "NL": r"\d{4}\s?[A-Z]{2}", "PL": r"\d{2}-\d{3}", "PT": r"\d{4}-\d{3}", "SE": r"\d{3}\s?\d{2}",
    "CZ": r"\d{3}\s?\d{2}", "SK": r"\d{3}\s?\d{2}", "GR": r"\d{3}\s?\d{2}",
}  # fmt: skip
_PREFIXES = {"D": "DE", "A": "AT", "F": "FR", "I": "IT", "E": "ES", "B": "BE", "S": "SE", "N": "NO", "L": "LU"}

_PLACE = r"[A-Z][A-Za-z.'\-]+(?:[ \t]+[A-Z][A-Za-z.'\-]+){0,3}"
_WORD = r"[^\W\d_][^\W\d_'’.\-]*"
# A town anywhere: capitalised words, with the small words some names have ("Furth im Wald", "Saint-Denis").
_TOWN = (
    rf"(?=[^\W\d_a-zß])(?:{_WORD})(?:[ \-](?:(?:im|am|an|der|de|la|le|sur|bei|del|di) )?(?=[^\W\d_a-zß]){_WORD}){{0,3}}"
)
_COUNTRY_WORDS = "|".join(re.escape(n) for n in sorted(COUNTRY_NAMES, key=len, reverse=True) if len(n) >= 3)


def _names(table: dict[str, str]) -> str:
    return "|".join([*table, *sorted(table.values(), key=len, reverse=True)])


_US = re.compile(rf"({_PLACE}),?\s+({_names(_US_STATES)})\.?,?\s+\d{{5}}(?:-\d{{4}})?\b")
_CA = re.compile(rf"({_PLACE}),?\s+({_names(_CA_PROVINCES)})\.?,?\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d\b")
_CA_POSTCODE_FIRST = re.compile(rf"({_PLACE}),\s+[A-Z]\d[A-Z]\s?\d[A-Z]\d,?\s+({'|'.join(_CA_PROVINCES)})\b")
_AU = re.compile(rf"({_PLACE}),?\s+({'|'.join(_AU_STATES)})\s+\d{{4}}\b")
_IE = re.compile(rf"({_PLACE}),\s*(Co\.?\s+[A-Z][a-z]+)\b")
_UK_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")
_POSTCODE_TOWN = re.compile(
    rf"(?:^|,\s|\n|\s-\s)(?:([A-Z]{{1,2}})-)?(\d{{2}}-\d{{3}}|\d{{4}}-\d{{3}}|\d{{4}}\s?[A-Z]{{2}}(?=\s)|\d{{3}}\s\d{{2}}|\d{{4,5}})\s+({_TOWN})"
)
_TOWN_PIN = re.compile(rf"({_TOWN})\s*[-,]?\s*(\d{{3}}\s?\d{{3}})\b")
# Towns are told by their capital letter, so only the country words ignore case.
_PLACE_COUNTRY = re.compile(rf"({_TOWN}),\s*(?:({_TOWN}),\s*)?\b((?i:{_COUNTRY_WORDS}))(?!\w)")
# The country closing an address: right after it, or after one more part ("woj. małopolskie, Polska").
_COUNTRY_LATER = re.compile(rf"^[\s,.]*(?:[^\d,]{{1,30}},\s*)??\b({_COUNTRY_WORDS})(?!\w)", re.IGNORECASE)

HQ_WORDS = re.compile(
    r"\b(?:head\s*quarters?|headquarter|head[- ]office|hq|corporate office|registered office|main office|"
    r"hauptsitz|firmensitz|zentrale|siège|sede (?:central|legale|principal)|casa matriz)\b",
    re.IGNORECASE,
)
_BRANCH_WORDS = re.compile(
    r"\b(?:branch|division|regional|area office|sales office|showroom|plant|factory|warehouse|subsidiary|"
    r"rep\.? office|representative office|manufacturing|distribution|store)\b",
    re.IGNORECASE,
)


# Opening hours ("Store Hours", "Distribution Centre: Tue. - Sat. 10am-4pm") head no branch's address.
_HOURS = re.compile(r"\bhours\b|\d\s*(?:am|pm)\b|\b\d{1,2}[:.]\d{2}\s*[-–]", re.IGNORECASE)


def is_hq_line(line: str) -> bool:
    """A line naming the headquarters ("Worldwide Headquarters", "Registered Office & Head Office:").

    A division's or a plant's headquarters is a branch, and a long sentence mentioning one is not a heading.
    """
    return bool(HQ_WORDS.search(line)) and not _BRANCH_WORDS.search(line) and len(line.split()) <= 8


def is_branch_line(line: str) -> bool:
    """A line naming a branch, a plant or a store; not one giving its opening hours."""
    return bool(_BRANCH_WORDS.search(line)) and len(line.split()) <= 8 and not _HOURS.search(line)


_NAMED_OFFICE = re.compile(rf"^({_TOWN})\s+(?i:office|location|studio)\s*:?$")


def named_offices(lines: list[str] | tuple[str, ...]) -> dict[int, bool]:
    """Headings of one office among several ("Cortez Office" above "Cortez, CO 81321"), by line: whether
    another office was listed before it. Offices listed after the first are its branches: a site lists
    its head office first."""
    offices: dict[int, bool] = {}
    first: str | None = None
    for index, line in enumerate(lines):
        if len(line) > 40 or not (match := _NAMED_OFFICE.match(line)) or HQ_WORDS.search(line):
            continue
        town = match.group(1).casefold()
        # The heading names a town only when the address under it does.
        if any(town in below.casefold() for below in lines[index + 1 : index + 4]):
            first = first or town
            offices[index] = town != first
    return offices


def setting(lines: list[str], index: int, above: int = 6, offices: dict[int, bool] | None = None) -> set[str]:
    """ "hq" or "branch": the nearest heading above a line (within `above` lines) that says which office it is.

    `offices` are the page's named offices (`named_offices`): one listed after the first is a branch.
    """
    for at in range(index, max(0, index - above) - 1, -1):
        line = lines[at]
        if is_hq_line(line):
            return {"hq"}
        if is_branch_line(line) or (offices is not None and offices.get(at)):
            return {"branch"}
    return set()


_NEARBY_ADDRESS = re.compile(r"[\w.+\-]+@([\w\-]+(?:\.[\w\-]+)+)|\bwww\.([\w\-]+(?:\.[\w\-]+)+)", re.IGNORECASE)


def foreign_nearby(lines: list[str], index: int, ctx: Context, after: int = 2) -> bool:
    """Whether another organisation's email or website sits just above or below: its contact block."""
    for line in lines[max(0, index - 2) : index + after + 1]:
        for match in _NEARBY_ADDRESS.finditer(line):
            domain = (match.group(1) or match.group(2)).lower().rstrip(".")
            own = domain == ctx.site_host or domain.endswith("." + ctx.site_host)
            if not own and brand_of("http://" + domain) != ctx.brand:
                return True
    return False


_BASED_IN = re.compile(r"\b(?:based|located|headquartered|situated)\s+in\s*$", re.IGNORECASE)
_HQ_HEADING = re.compile(rf"^(?:[\w&.'’\- ]{{0,30}}\s)?(?:{HQ_WORDS.pattern})\s*:?$", re.IGNORECASE)
_WINDOW_LINES, _SHORT_LINE = 4, 90
_DIGIT = re.compile(r"\d")


@dataclass(frozen=True)
class Address:
    city: str
    region: str | None  # as written ("Michigan", "ON", "Co. Offaly")
    country: str | None  # ISO code
    written_country: str | None  # the country as the page writes it, when it does
    kind: str  # "postal" (a full postal format), "phrase" ("Vienna, Austria"), "heading" (HQ: City, Region)


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
    if not city or len(city) > 40 or city.lower() in COUNTRY_NAMES or city.lower() in _UK_COUNTIES:
        return None
    return None if len(city) <= 3 and city.isupper() else city  # "HU": the end of a postcode, not a town


def _windows(lines: list[str]) -> Iterator[tuple[int, str, int]]:
    """(line index, up to four short lines joined, length of the first line in it).

    A line that ends with a comma continues the address ("Southbroom," / "South Africa"); other lines are
    joined by a newline, so a menu of towns ("Seattle" / "Austria") never reads as "Seattle, Austria".
    """
    for index, line in enumerate(lines):
        window = lines[index : index + _WINDOW_LINES] if len(line) <= _SHORT_LINE else [line]
        text, first = "", 0
        for position, part in enumerate(window):
            if position and len(part) > _SHORT_LINE:
                break
            if position:
                text += ", " if window[position - 1].rstrip().endswith(",") else "\n"
            text += part.rstrip(" ,;")
            first = first or len(text)
        yield index, text, first


def _country_after(text: str) -> tuple[str | None, str | None]:
    match = _COUNTRY_LATER.match(text)
    if not match:
        return None, None
    return normalise_country(match.group(1)), match.group(1)


def _regional(text: str, first: int) -> Iterator[tuple[int, Address]]:
    """US, Canadian, Australian and Irish addresses: the town, then the state or county, then the postcode."""
    for pattern, country in ((_US, "US"), (_CA, "CA"), (_CA_POSTCODE_FIRST, "CA"), (_AU, "AU"), (_IE, "IE")):
        for m in pattern.finditer(text):
            if m.start() < first and (city := _city(m.group(1))):
                code, written = _country_after(text[m.end() :])
                yield m.start(), Address(city, m.group(2), code or country, written, "postal")


def _british(text: str, first: int) -> Iterator[tuple[int, Address]]:
    """A UK postcode: the town is the last part before it that is not a county."""
    for m in _UK_POSTCODE.finditer(text):
        before = [p.strip() for p in re.split(r"[,\n]", text[: m.start()]) if p.strip()]
        while before and before[-1].lower() in _UK_COUNTIES:
            before.pop()
        # The town may sit on the line above its postcode: the address belongs to the window of the town's line.
        if not before or text.rfind(before[-1], 0, m.start()) >= first:
            continue
        last = before[-1].split(" ", 1)[-1] if before[-1][0].isdigit() else before[-1]
        city = _city(last) if re.fullmatch(_PLACE, last) else None
        if city:
            code, written = _country_after(text[m.end() :])
            yield m.start(), Address(city, None, code if code == "GB" else "GB", written, "postal")


def _continental(text: str, first: int, region: str | None) -> Iterator[tuple[int, Address]]:
    """ "postcode town": which country comes from a country name after it, a "DE-" prefix, or the site's region."""
    for m in _POSTCODE_TOWN.finditer(text):
        if m.start() >= first:
            continue
        code, written = _country_after(text[m.end() :])
        prefix = m.group(1)
        country = code or (_PREFIXES.get(prefix, prefix) if prefix else None) or region
        postcode = _POSTCODES.get(country or "")
        if country is None or (postcode is not None and not re.fullmatch(postcode, m.group(2))):
            continue
        if postcode is None and code is None:
            continue  # a number before a word, in a country whose postcodes we do not know: not enough
        if city := _city(m.group(3)):
            yield m.start(), Address(city, None, country, written, "postal")
    for m in _TOWN_PIN.finditer(text):
        code, written = _country_after(text[m.end() :])
        if m.start() < first and (code or region) == "IN" and (city := _city(m.group(1))):
            yield m.start(), Address(city, None, "IN", written, "postal")


def _phrases(text: str, first: int) -> Iterator[tuple[int, Address]]:
    """ "Vienna, Austria", "Southbroom, Kwa-Zulu Natal, South Africa": a place and a country named together.

    Not in a list of places ("Seattle, Washington, Vienna, Austria, ..."): that names where the company works.
    """
    if text[:first].count(",") >= 3:
        return
    for m in _PLACE_COUNTRY.finditer(text):
        if m.start() < first and (city := _city(m.group(1))):
            code = normalise_country(m.group(3))
            if code:
                yield m.start(), Address(city, m.group(2), code, m.group(3), "phrase")


def _headed(lines: list[str], index: int) -> Address | None:
    """A facts table: "World Headquarters" on one line, "Minneapolis, Minnesota" on the next."""
    if not _HQ_HEADING.match(lines[index]) or index + 1 >= len(lines):
        return None
    match = re.fullmatch(rf"({_TOWN}),\s*({_TOWN})", lines[index + 1].strip(" ."))
    if not match or not (city := _city(match.group(1))):
        return None
    region = match.group(2)
    state = region if region in _US_STATES.values() else None
    country = normalise_country(region) or ("US" if state else None)
    written = region if normalise_country(region) else None
    return Address(city, None if written else region, country, written, "heading")


def _traits(
    lines: list[str], index: int, before: str, address: Address, ctx: Context, offices: dict[int, bool]
) -> set[str]:
    """What the page says around the address: a headquarters or branch heading, "based in", another
    organisation's email or website (the address is theirs: an ombudsman's, a regulator's)."""
    traits = {address.kind} | setting(lines, index, offices=offices)
    if _BASED_IN.search(before):
        traits.add("based-in")
    if address.written_country:
        traits.add("country-stated")
    if foreign_nearby(lines, index, ctx, after=_WINDOW_LINES):
        traits.add("foreign")
    return traits


def location_as_written(address: Address) -> str:
    return ", ".join(p for p in (address.city, address.region, address.written_country) if p)


def _clues(address: Address, traits: set[str], what: str, place: str, ctx: Context) -> Iterator[Clue | None]:
    yield clue("company_city", address.city, "text", what, ctx, traits, place)
    if address.country:
        yield clue("company_country", address.country, "text", what, ctx, traits, place)
    yield clue("company_hq_location", location_as_written(address), "text", what, ctx, traits, place)


def from_addresses(lines: list[str], ctx: Context) -> Iterator[Clue | None]:
    """City, country and location of every address the page writes out, with what the page says above it."""
    offices = named_offices(lines)
    for index, text, first in _windows(lines):
        found: dict[str, tuple[int, Address]] = {}
        postal = _DIGIT.search(text) is not None  # every postal format has a postcode; a phrase needs a comma
        readings = (
            *(_regional(text, first) if postal or "Co." in text else ()),
            *(_british(text, first) if postal else ()),
            *(_continental(text, first, ctx.region) if postal else ()),
            *(_phrases(text, first) if "," in text[: first + 2] else ()),
        )
        for start, address in readings:
            # One address read by two patterns is one address: the full postal reading wins over a phrase.
            if address.city not in found or found[address.city][1].kind == "phrase":
                found[address.city] = (start, address)
        if headed := _headed(lines, index):
            found.setdefault(headed.city, (0, headed))
        for city, (start, address) in found.items():
            kind = {"postal": "postal address", "phrase": "place and country", "heading": "headquarters heading"}
            place = f"{ctx.page_url}#L{index}:{city}"
            traits = _traits(lines, index, text[:start], address, ctx, offices)
            yield from _clues(address, traits, kind[address.kind], place, ctx)
