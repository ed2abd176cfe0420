"""Company facts from fetched website pages: structured data, meta tags, the title, the logo, links and text.

Pure functions over bytes already downloaded: no network, no environment. Every method reports
what it sees with a confidence that reflects the method (structured data > meta tags > text
heuristics); a value two methods agree on is raised, and one finding per (field, value) comes out.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator, Sequence
from urllib.parse import urljoin, urlsplit

import lxml.html

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract.base import (
    EVIDENCE_LIMIT,
    Context,
    Method,
    Page,
    brand_of,
    compact,
    decode_html,
    found,
    host_of,
    parse_page,
    region_of,
)
from glaze_pipeline.core.web.extract.markup import from_links, from_logo, from_meta, from_title
from glaze_pipeline.core.web.extract.structured import from_json_ld, from_microdata_and_rdfa
from glaze_pipeline.core.web.extract.text import LEGAL_FORM, TEXT_METHODS, visible_lines

__all__ = ["EVIDENCE_LIMIT", "METHODS", "Page", "decode_html", "extract"]

AGREEMENT_BONUS = 5  # per further method stating the same value
SEVERAL_PAGES_BONUS = 3  # stated on more than one page (a site-wide footer)
AGREEMENT_CAP = 95  # agreement alone never reaches certainty


def from_visible_text(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    """Every text heuristic over the page's visible lines, split once."""
    lines = visible_lines(doc)
    for method in TEXT_METHODS:
        yield from method(lines, ctx)


def from_domain(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    """A country-code domain hints at the country; weakly, since .io or .co say nothing and many sites sell abroad."""
    if ctx.is_home and (region := region_of(ctx.page_url)):
        yield found("company_country", region, 50, "country-code domain", ctx)


# Order is only the order of results; confidence, not position, decides what wins.
METHODS: tuple[Method, ...] = (
    from_json_ld,
    from_microdata_and_rdfa,
    from_meta,
    from_title,
    from_logo,
    from_links,
    from_visible_text,
    from_domain,
)


def _is_home(url: str, base_url: str) -> bool:
    path = urlsplit(url).path.lower().rstrip("/")
    return url.rstrip("/") == base_url.rstrip("/") or path in ("", "/index.html", "/index.htm", "/index.php", "/home")


def _base_href(doc: lxml.html.HtmlElement, page_url: str) -> str:
    base = doc.find(".//base[@href]")
    return urljoin(page_url, base.get("href", "")) if base is not None else page_url


def _findings(parsed: list[tuple[Page, lxml.html.HtmlElement]], base_url: str, region: str | None) -> list[Found]:
    brand, site_host = brand_of(base_url), host_of(base_url).removeprefix("www.")
    results: list[Found] = []
    seen: set[Found] = set()
    for page, doc in parsed:
        ctx = Context(
            page_url=page.url,
            base_url=_base_href(doc, page.url),
            brand=brand,
            region=region_of(page.url) or region,
            site_host=site_host,
            is_home=_is_home(page.url, base_url),
        )
        for method in METHODS:
            for finding in method(doc, ctx):
                # The same link in header and footer is one finding, not two votes.
                if finding is not None and finding not in seen:
                    seen.add(finding)
                    results.append(finding)
    return results


def _stated_country(findings: list[Found]) -> str | None:
    """The country the site states most surely (structured data or a postal address), to read its phone numbers."""
    # 75: structured data or a US/Canadian/Australian postal address; a lone UK-postcode look-alike is not enough.
    stated = [f for f in findings if f.field == "company_country" and f.confidence >= 75]
    if not stated:
        return None
    best = max(f.confidence for f in stated)
    return Counter(f.value for f in stated if f.confidence == best).most_common(1)[0][0]


def _method(evidence: str) -> str:
    """ "json-ld Organization.email @ url" -> "json-ld": the method family a finding came from."""
    return evidence.split(" @ ", 1)[0].split(" ", 1)[0].split(".", 1)[0].lower()


_LEGAL_SUFFIX = re.compile(rf"[\s,]+(?:{LEGAL_FORM})\s*$", re.IGNORECASE)


def _agreement_key(field: str, value: str) -> str:
    """Values that state the same thing: a brand and its legal name ("Acme" / "Acme Ltd") support each other."""
    return compact(_LEGAL_SUFFIX.sub("", value)) if field == "company_name" else value


def agree(findings: list[Found]) -> list[Found]:
    """One finding per (field, value): the best one, raised when other methods or pages state the same thing."""
    groups: dict[tuple[str, str], list[Found]] = {}
    for finding in findings:
        groups.setdefault((finding.field, _agreement_key(finding.field, finding.value)), []).append(finding)
    merged = []
    for group in groups.values():
        methods = {_method(f.evidence) for f in group}
        several_pages = len({f.evidence.rsplit(" @ ", 1)[-1] for f in group}) > 1
        values: dict[str, Found] = {}
        for finding in group:  # the best finding of each distinct value, in first-seen order
            if finding.value not in values or finding.confidence > values[finding.value].confidence:
                values[finding.value] = finding
        for best in values.values():
            others = sorted(methods - {_method(best.evidence)})
            bonus = AGREEMENT_BONUS * len(others) + (SEVERAL_PAGES_BONUS if several_pages else 0)
            # A brand and its legal name support each other, but the brand stays the name shown.
            legal = best.field == "company_name" and _LEGAL_SUFFIX.search(best.value) is not None
            cap = AGREEMENT_CAP - 5 if legal else AGREEMENT_CAP
            confidence = max(best.confidence, min(cap, best.confidence + bonus))
            evidence = f"{best.evidence} (agrees: {', '.join(others)})" if others else best.evidence
            merged.append(Found(best.field, best.value, max(0, min(100, confidence)), evidence[:EVIDENCE_LIMIT]))
    return merged


def extract(pages: Sequence[Page], base_url: str) -> list[Found]:
    """Every company fact the pages state, one finding per (field, value); [] for pages that are not HTML."""
    parsed = [(page, doc) for page in pages if (doc := parse_page(page)) is not None]
    region = region_of(base_url)
    findings = _findings(parsed, base_url, region)
    if region is None and (stated := _stated_country(findings)):
        # National phone numbers can be read once the site says where it is.
        findings = _findings(parsed, base_url, stated)
    return agree(findings)
