"""Structured data: JSON-LD, microdata and RDFa Organization nodes, the most deliberate statements a site makes."""

from __future__ import annotations

import html
import json
import logging
import re
from collections.abc import Iterator
from urllib.parse import urljoin

import extruct
import lxml.html

from glaze_pipeline.core.web.extract.base import Clue, Context, clue, emails, phone_e164, socials
from glaze_pipeline.core.web.extract.markup import site_root

log = logging.getLogger(__name__)

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
    types = node.get("@type") or node.get("type")  # hand-written blocks sometimes drop the "@"
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
    elif isinstance(value, str):
        yield html.unescape(value)  # CMSs escape HTML inside the JSON too ("Think &amp; Do Tank")
    elif isinstance(value, int | float):
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


def _address_facts(node: dict[str, object], kind: str, ctx: Context) -> Iterator[Clue | None]:
    """City and country of the organisation's own postal address: its seat, so they carry the "hq" trait."""
    for key in ("address", "location"):
        for index, address in enumerate(_dicts(node.get(key))):
            place = f"{ctx.page_url}#{kind}.{key}.{index}"
            for raw in _strings(address.get("addressLocality")):
                # Hand-written blocks put the county in too ("Bristol, Avon,"): the town comes first.
                yield clue("company_city", raw.split(",")[0], "structured", f"{kind}.{key}.addressLocality", ctx,
                           {"hq"}, place)  # fmt: skip
            country = address.get("addressCountry")
            for value in (country, *(d.get("name") for d in _dicts(country))):
                for raw in _strings(value):
                    yield clue("company_country", raw, "structured", f"{kind}.{key}.addressCountry", ctx, {"hq"}, place)
            written = [
                next(_strings(address.get(part)), "").split(",")[0].strip()
                for part in ("addressLocality", "addressRegion", "addressCountry")
            ]
            if written[0]:
                yield clue("company_hq_location", ", ".join(p for p in written if p), "structured",
                           f"{kind}.{key}", ctx, {"hq"}, place)  # fmt: skip


def _contact_facts(node: dict[str, object], kind: str, ctx: Context) -> Iterator[Clue | None]:
    """Phones and emails, of the organisation itself and of its contactPoint entries."""
    for holder, what in ((node, kind), *((d, f"{kind}.contactPoint") for d in _dicts(node.get("contactPoint")))):
        for raw in _strings(holder.get("email")):
            yield from emails(raw.removeprefix("mailto:"), "structured", f"{what}.email", ctx)
        for raw in _strings(holder.get("telephone")):
            yield clue("company_phone", phone_e164(raw, ctx.region), "structured", f"{what}.telephone", ctx)


def organization_facts(node: dict[str, object], kind: str, ctx: Context) -> Iterator[Clue | None]:
    """Every company fact one Organization node states; `kind` names the syntax for the evidence."""
    simple = (
        ("name", "company_name"),
        ("legalName", "company_name"),
        ("description", "company_description"),
        ("foundingDate", "company_founded_year"),
    )
    for key, field in simple:
        for raw in _strings(node.get(key)):
            yield clue(field, raw, "structured", f"{kind}.{key}", ctx, {"home"} if ctx.is_home else ())
    for raw in _strings(node.get("url")):
        yield clue("company_website", site_root(raw), "structured", f"{kind}.url", ctx)
    yield from _contact_facts(node, kind, ctx)
    for key in ("sameAs", "url"):
        for raw in _strings(node.get(key)):
            yield from socials(raw, "structured", f"{kind}.{key}", ctx)
    logo = node.get("logo")
    for raw in (*_strings(logo), *(s for d in _dicts(logo) for s in _strings(d.get("url") or d.get("contentUrl")))):
        yield clue("company_logo_url", urljoin(ctx.base_url, raw), "structured", f"{kind}.logo", ctx)
    employees = node.get("numberOfEmployees")
    for value in (employees, *(d.get("value") for d in _dicts(employees))):
        for raw in _strings(value):
            yield clue("company_employee_count", raw, "structured", f"{kind}.numberOfEmployees", ctx)
    yield from _address_facts(node, kind, ctx)


def _website_facts(node: dict[str, object], ctx: Context) -> Iterator[Clue | None]:
    """A WebSite node names the site (the brand) and often gives its tagline as the description."""
    for raw in _strings(node.get("name")):  # the site's name, as og:site_name gives it: a meta statement
        yield clue("company_name", raw, "meta", "json-ld WebSite.name", ctx)
    for raw in _strings(node.get("description")):
        yield clue("company_description", raw, "structured", "json-ld WebSite.description", ctx)


def from_json_ld(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    for block in _json_ld_blocks(doc):
        for node in _nodes(block):
            if _is_organization(node):
                yield from organization_facts(node, "json-ld Organization", ctx)
            elif node.get("@type") == "WebSite":
                yield from _website_facts(node, ctx)
            # A WebSite/WebPage often names its publisher or owner as a nested Organization.
            for key in ("publisher", "provider", "author", "parentOrganization"):
                for nested in _dicts(node.get(key)):
                    if _is_organization(nested) and node.get("@type") in ("WebSite", "WebPage"):
                        yield from organization_facts(nested, f"json-ld {node.get('@type')}.{key}", ctx)


def _has_markup(doc: lxml.html.HtmlElement) -> tuple[bool, bool]:
    # XPath runs in libxml2; ElementPath's find() would walk the tree in Python.
    microdata = bool(doc.xpath("boolean(//*[@itemscope])"))
    rdfa = bool(doc.xpath("boolean(//*[@typeof] | //*[@vocab])"))
    return microdata, rdfa


def _uniform_nodes(data: object) -> Iterator[dict[str, object]]:
    """Every dict in extruct's uniform output, nested ones included (microdata nests an address in a company)."""
    if isinstance(data, list):
        for item in data:
            yield from _uniform_nodes(item)
    elif isinstance(data, dict):
        yield data
        for value in data.values():
            if isinstance(value, list | dict):
                yield from _uniform_nodes(value)


def from_microdata_and_rdfa(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """Organization items in microdata or RDFa, read by extruct; pages without either are skipped cheaply."""
    microdata, rdfa = _has_markup(doc)
    syntaxes = [name for name, present in (("microdata", microdata), ("rdfa", rdfa)) if present]
    if not syntaxes:
        return
    try:
        data = extruct.extract(doc, base_url=ctx.base_url, syntaxes=syntaxes, uniform=True, errors="ignore")
    except Exception as exc:  # extruct and its RDF parsers raise many kinds of errors on odd markup
        log.debug("extruct failed on %s: %s", ctx.page_url, exc)
        return
    for syntax in syntaxes:
        for node in _uniform_nodes(data.get(syntax, [])):
            if _is_organization(node):
                yield from organization_facts(node, f"{syntax} Organization", ctx)
