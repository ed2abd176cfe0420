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
from collections.abc import Callable, Iterator, Sequence
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
from glaze_pipeline.core.web.extract.markup import (
    from_links,
    from_logo,
    from_meta,
    from_phone_links,
    from_site,
    from_title,
)
from glaze_pipeline.core.web.extract.structured import from_json_ld, from_microdata_and_rdfa
from glaze_pipeline.core.web.extract.text import TEXT_METHODS, visible_lines

__all__ = ["EVIDENCE_LIMIT", "METHODS", "REGIONAL", "Page", "candidates", "decode_html", "extract"]


def _on_lines(method: Callable[[list[str], Context], Iterator[Clue | None]]) -> Method:
    """A text heuristic as a method: it reads the page's visible lines, split once per page."""

    def on_page(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
        return method(list(ctx.lines) if ctx.lines is not None else visible_lines(doc), ctx)

    on_page.__name__ = method.__name__
    return on_page


METHODS: tuple[Method, ...] = (
    from_json_ld,
    from_microdata_and_rdfa,
    from_meta,
    from_title,
    from_logo,
    from_phone_links,
    from_links,
    *(_on_lines(method) for method in TEXT_METHODS),
    from_site,
)
# What reads national phone numbers or postcodes with the site's region: the only methods read again once
# the pages say which country the site is in.
REGIONAL = frozenset(
    {"from_json_ld", "from_microdata_and_rdfa", "from_phone_links", "from_text_phones", "from_addresses"}
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
    hrefs = doc.xpath("//base/@href")
    return urljoin(page_url, str(hrefs[0])) if hrefs else page_url


Parsed = list[tuple[Page, lxml.html.HtmlElement, tuple[str, ...]]]  # each page, its tree and its visible lines
Said = list[list[list[Clue]]]  # per page, per method: the clues it found


def _context(page: Page, doc: lxml.html.HtmlElement, lines: tuple[str, ...], base_url: str, region: str | None,
             guessed: bool) -> Context:  # fmt: skip
    return Context(
        page_url=page.url,
        base_url=_base_href(doc, page.url),
        brand=brand_of(base_url),
        region=region_of(page.url) or region,
        site_host=host_of(base_url).removeprefix("www."),
        is_home=_is_home(page.url, base_url),
        region_guessed=guessed and region_of(page.url) is None,
        is_about=bool(_ABOUT_PATH.search(urlsplit(page.url).path.lower())),
        lines=lines,
    )


def _said(parsed: Parsed, base_url: str, region: str | None, guessed: bool, before: Said | None = None) -> Said:
    """What every method finds on every page; given what they found `before` without a region, only the
    regional methods read the pages again."""
    said: Said = []
    for number, (page, doc, lines) in enumerate(parsed):
        ctx = _context(page, doc, lines, base_url, region, guessed)
        said.append([
            [c for c in method(doc, ctx) if c is not None]
            if before is None or method.__name__ in REGIONAL
            else before[number][position]
            for position, method in enumerate(METHODS)
        ])  # fmt: skip
    return said


def _clues(said: Said) -> list[Clue]:
    clues: list[Clue] = []
    for page in said:
        found = [c for method in page for c in method]
        # A page that states nothing about a company (an error page, a non-HTML body) gives no website either.
        if any(c.method != "site" for c in found):
            clues.extend(found)
    return clues


def _stated_region(clues: list[Clue], site: Site) -> str | None:
    """The country the site states for itself (its headquarters' address, structured data, geo tags)."""
    places = [c for c in clues if c.field in ("company_city", "company_country", "company_hq_location")]
    countries = [c for c in choose(places, site) if c.field == "company_country"]
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
    said = _said(parsed, base_url, region, guessed=False)
    clues = _clues(said)
    if region is None:
        # National numbers and addresses can be read once the site says where it is, or its language does.
        if stated := _stated_region(clues, _site(base_url, clues)):
            clues = _clues(_said(parsed, base_url, stated, guessed=False, before=said))
        elif spoken := _language_region(parsed):
            clues = _clues(_said(parsed, base_url, spoken, guessed=True, before=said))
    return choose(clues, _site(base_url, clues))


def _evidence(candidate: Candidate) -> str:
    best = candidate.best_clue()
    others = sorted({c.what.split(" ", 1)[0] for c in candidate.clues if c.method != best.method})
    evidence = best.evidence + (f" (agrees: {', '.join(others)})" if others else "")
    return evidence[:EVIDENCE_LIMIT]


def extract(pages: Sequence[Page], base_url: str) -> list[Found]:
    """Every company fact the pages state, one value per candidate with its calibrated confidence; [] for non-HTML."""
    return [Found(c.field, c.value, confidence(c), _evidence(c), c.reason) for c in candidates(pages, base_url)]
