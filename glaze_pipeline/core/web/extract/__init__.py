"""Company facts from fetched website pages: structured data, meta tags, the title, the logo, links and text.

Pure functions over bytes already downloaded: no network, no environment. Three steps:
every method reports clues (what a page states, how and in what setting); the choice step
groups clues into candidates and ranks them per field with readable reasons; calibration
gives each candidate the measured probability that it is right. Losing candidates come out
too, at their lower confidence and with the reason they lost.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from urllib.parse import urljoin, urlsplit

import lxml.html
import phonenumbers

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract.base import (
    EVIDENCE_LIMIT,
    Clue,
    Context,
    Method,
    Page,
    brand_of,
    compact,
    decode_html,
    host_of,
    parse_page,
    region_of,
)
from glaze_pipeline.core.web.extract.calibration import confidence
from glaze_pipeline.core.web.extract.candidate import Candidate, Site
from glaze_pipeline.core.web.extract.choose import choose
from glaze_pipeline.core.web.extract.markup import from_links, from_logo, from_meta, from_site, from_title
from glaze_pipeline.core.web.extract.structured import from_json_ld, from_microdata_and_rdfa
from glaze_pipeline.core.web.extract.text import TEXT_METHODS, visible_lines

__all__ = ["EVIDENCE_LIMIT", "METHODS", "Page", "candidates", "decode_html", "extract"]


def from_visible_text(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """Every text heuristic over the page's visible lines, split once."""
    lines = list(ctx.lines) if ctx.lines is not None else visible_lines(doc)
    for method in TEXT_METHODS:
        yield from method(lines, ctx)


METHODS: tuple[Method, ...] = (
    from_json_ld,
    from_microdata_and_rdfa,
    from_meta,
    from_title,
    from_logo,
    from_links,
    from_visible_text,
    from_site,
)

_HOME_PATHS = ("", "/index.html", "/index.htm", "/index.php", "/home", "/default.aspx")
_ABOUT_PATH = re.compile(r"about|history|company|story|who-we-are|ueber|uber|über|unternehmen|geschichte|empresa")
# Languages spoken mainly in one country: a national phone number on such a page is most likely that country's.
_LANGUAGE_REGION = {
    "de": "DE", "fr": "FR", "es": "ES", "it": "IT", "nl": "NL", "pl": "PL", "pt": "PT", "sv": "SE", "da": "DK",
    "fi": "FI", "nb": "NO", "no": "NO", "cs": "CZ", "hu": "HU", "el": "GR", "ja": "JP", "ko": "KR", "tr": "TR",
}  # fmt: skip


def _is_home(url: str, base_url: str) -> bool:
    path = urlsplit(url).path.lower().rstrip("/")
    return url.rstrip("/") == base_url.rstrip("/") or path in _HOME_PATHS


def _base_href(doc: lxml.html.HtmlElement, page_url: str) -> str:
    base = doc.find(".//base[@href]")
    return urljoin(page_url, base.get("href", "")) if base is not None else page_url


Parsed = list[tuple[Page, lxml.html.HtmlElement, tuple[str, ...]]]  # each page, its tree and its visible lines


def _clues(parsed: Parsed, base_url: str, region: str | None, guessed: bool) -> list[Clue]:
    brand, site_host = brand_of(base_url), host_of(base_url).removeprefix("www.")
    clues: list[Clue] = []
    for page, doc, lines in parsed:
        ctx = Context(
            page_url=page.url,
            base_url=_base_href(doc, page.url),
            brand=brand,
            region=region_of(page.url) or region,
            site_host=site_host,
            is_home=_is_home(page.url, base_url),
            region_guessed=guessed and region_of(page.url) is None,
            is_about=bool(_ABOUT_PATH.search(urlsplit(page.url).path.lower())),
            lines=lines,
        )
        found = [c for method in METHODS for c in method(doc, ctx) if c is not None]
        # A page that states nothing about a company (an error page, a non-HTML body) gives no website either.
        if any(c.method != "site" for c in found):
            clues.extend(found)
    return clues


def _stated_region(clues: list[Clue], site: Site) -> str | None:
    """The country the site states for itself (its headquarters' address, structured data, geo tags)."""
    countries = [c for c in choose(clues, site) if c.field == "company_country"]
    # A country named in passing ("offices in Vienna, Austria") is not where the site's numbers belong.
    if countries and (countries[0].methods - {"text", "domain"} or "postal" in countries[0].traits):
        return countries[0].value
    # Numbers the site writes internationally say where it is: +44 numbers on a .com site are British ones.
    prefixes = [
        phonenumbers.region_code_for_number(phonenumbers.parse(c.value))
        for c in clues
        if c.field == "company_phone" and c.method in ("link", "text", "structured")
    ]
    known = [p for p in prefixes if p and p != "ZZ"]
    return Counter(known).most_common(1)[0][0] if known else None


def _language_region(parsed: Parsed) -> str | None:
    """The country a non-English page's language points to ("de-AT" → AT, "pl" → PL); English says nothing."""
    for _, doc, _ in parsed:
        lang = (doc.get("lang") or doc.get("{http://www.w3.org/XML/1998/namespace}lang") or "").lower()
        language, _, country = lang.replace("_", "-").partition("-")
        if language and language != "en":
            region = country.upper() if len(country) == 2 else _LANGUAGE_REGION.get(language)
            if region in phonenumbers.SUPPORTED_REGIONS:
                return region
    return None


def _site(base_url: str, clues: list[Clue]) -> Site:
    names = {
        compact(c.value)
        for c in clues
        if c.field == "company_name" and (c.method in ("structured", "meta") or "brand" in c.traits)
    }
    return Site(host_of(base_url).removeprefix("www."), brand_of(base_url), frozenset(n for n in names if n))


def candidates(pages: Sequence[Page], base_url: str) -> list[Candidate]:
    """Every field's candidates, ranked and explained, before confidence: what calibration is fitted on."""
    trees = [(page, doc) for page, doc in ((p, parse_page(p)) for p in pages) if doc is not None]
    parsed = [(page, doc, tuple(visible_lines(doc))) for page, doc in trees]
    region = region_of(base_url)
    clues = _clues(parsed, base_url, region, guessed=False)
    if region is None:
        # National numbers and addresses can be read once the site says where it is, or its language does.
        if stated := _stated_region(clues, _site(base_url, clues)):
            clues = _clues(parsed, base_url, stated, guessed=False)
        elif spoken := _language_region(parsed):
            clues = _clues(parsed, base_url, spoken, guessed=True)
    return choose(clues, _site(base_url, clues))


def _evidence(candidate: Candidate) -> str:
    best = candidate.best_clue()
    others = sorted({c.what.split(" ", 1)[0] for c in candidate.clues if c.method != best.method})
    evidence = best.evidence + (f" (agrees: {', '.join(others)})" if others else "")
    return evidence[:EVIDENCE_LIMIT]


def extract(pages: Sequence[Page], base_url: str) -> list[Found]:
    """Every company fact the pages state, one value per candidate with its calibrated confidence; [] for non-HTML."""
    return [Found(c.field, c.value, confidence(c), _evidence(c), c.reason) for c in candidates(pages, base_url)]
