"""Markup a site writes for machines and for navigation: meta and OpenGraph tags, the title, the logo, links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from urllib.parse import unquote, urljoin

import lxml.html

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract.base import Context, compact, email, found, phone_e164, socials


def _meta(doc: lxml.html.HtmlElement) -> Iterator[tuple[str, str]]:
    """(lowercased property-or-name, content) for every <meta> that has both."""
    for meta in doc.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = meta.get("content")
        if key and content:
            yield key, content


def from_meta(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    for key, content in _meta(doc):
        if key == "og:site_name":
            # Some sites append a tagline here too ("Acme - Widgets for everyone").
            named = brand_from_title(content, ctx.brand)
            if named is not None:
                yield found(
                    "company_name", named[0], 80 if named[0] == content.strip() else 70, "meta og:site_name", ctx
                )
        elif key in ("description", "og:description"):
            # An article's description describes the article, not the company.
            yield found("company_description", content, 75 if ctx.is_home else 50, f"meta {key}", ctx)
        elif key == "og:image" and "logo" in content.lower():
            yield found("company_logo_url", urljoin(ctx.base_url, content), 75, "meta og:image", ctx)
        elif key == "og:url":
            yield found("company_website", content, 70, "meta og:url", ctx)
        elif key == "twitter:site":
            handle = content.strip()
            url = f"https://x.com/{handle[1:]}" if handle.startswith("@") else handle
            yield found("company_twitter", url, 75, "meta twitter:site", ctx)


# --- <title> --------------------------------------------------------------------------------------------

# Spaced dashes only: "Hewlett-Packard" is one name.
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|·•»]\s+|\s*[|•»]\s*|:\s+")
_GENERIC_TITLES = {"home", "homepage", "home page", "welcome", "index", "about", "about us", "contact"}
_WELCOME = re.compile(r"^(?:welcome to|about|contact)\s+", re.IGNORECASE)
_BRAND_MAX_WORDS = 5


def brand_from_title(title: str, brand: str) -> tuple[str, bool] | None:
    """The brand part of a title, and whether the domain confirms it; None when every part is a sentence."""
    parts = [_WELCOME.sub("", p).strip() for p in _TITLE_SEPARATORS.split(title)]
    parts = [p for p in parts if p and p.lower() not in _GENERIC_TITLES and len(p.split()) <= _BRAND_MAX_WORDS]
    if not parts:
        return None
    squeezed = {p: compact(p) for p in parts}
    # The whole domain label inside a part ("Acme Widgets" on acme.com) beats a part inside the label.
    whole = [p for p in parts if brand and brand in squeezed[p]]
    partial = [p for p in parts if brand and len(squeezed[p]) >= 3 and squeezed[p] in brand]
    if whole or partial:
        return min(whole or partial, key=len), True
    # Taglines are sentences; brands are short. min() keeps the first of equally short parts.
    return min(parts, key=len), False


def from_title(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    title = doc.find(".//title")
    brand = brand_from_title(title.text_content(), ctx.brand) if title is not None else None
    if brand is not None:
        name, confirmed = brand
        yield found("company_name", name, 70 if confirmed else 55, "title", ctx)


# --- links ----------------------------------------------------------------------------------------------


def from_links(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        lowered = href.lower()
        if lowered.startswith("mailto:"):
            yield email(unquote(href[len("mailto:") :]), 85, "mailto link", ctx)
        elif lowered.startswith("tel:"):
            yield found("company_phone", phone_e164(href[len("tel:") :], ctx.region), 75, "tel link", ctx)
        elif "/cdn-cgi/l/email-protection#" in lowered:
            yield email(cloudflare_email(href.rsplit("#", 1)[1]), 85, "cloudflare-protected link", ctx)
        elif href:
            yield from socials(href, 80, "link", ctx)
    for element in doc.xpath("//*[@data-cfemail]"):
        yield email(cloudflare_email(element.get("data-cfemail", "")), 80, "cloudflare-protected text", ctx)


def cloudflare_email(encoded: str) -> str:
    """Cloudflare's email protection: hex bytes, the first a key XORed into the rest."""
    try:
        data = bytes.fromhex(encoded.strip())
    except ValueError:
        return ""
    if len(data) < 2:
        return ""
    return bytes(b ^ data[0] for b in data[1:]).decode("latin-1")


# --- logo -----------------------------------------------------------------------------------------------

# Images that carry "logo" in their name but show someone else's mark or many marks at once.
_NOT_OUR_LOGO = re.compile(
    r"sprite|badge|award|seal|certif|partner|client|member|sponsor|payment|visa|mastercard|paypal|trust|"
    r"accredit|bbb|facebook|twitter|linkedin|instagram|youtube|google|apple|app-?store|powered|footer",
    re.IGNORECASE,
)
_LOGO_HINT = re.compile(r"logo", re.IGNORECASE)


def _describes(element: lxml.html.HtmlElement) -> str:
    parts = [element.get(a) or "" for a in ("src", "alt", "class", "id", "title")]
    parent = element.getparent()
    if parent is not None:
        parts += [parent.get("class") or "", parent.get("id") or ""]
    return " ".join(parts)


def _links_home(element: lxml.html.HtmlElement, ctx: Context) -> bool:
    anchor = next((a for a in element.iterancestors("a")), None)
    if anchor is None:
        return False
    target = urljoin(ctx.base_url, anchor.get("href") or "")
    return target.rstrip("/").split("://")[-1].removeprefix("www.") in (
        ctx.site_host,
        f"{ctx.site_host}/index.html",
        f"{ctx.site_host}/index.php",
    )


def from_logo(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Found | None]:
    """The first image named as a logo that is not a badge, sprite or partner mark; one linking home ranks higher."""
    for image in doc.iter("img"):
        described = _describes(image)
        src = image.get("src") or image.get("data-src") or ""
        if not src or src.startswith("data:") or not _LOGO_HINT.search(described) or _NOT_OUR_LOGO.search(described):
            continue
        in_header = any(
            a.tag == "header" or "header" in (a.get("id") or "") + (a.get("class") or "") for a in image.iterancestors()
        )
        confidence = 80 if _links_home(image, ctx) or in_header else 65
        yield found("company_logo_url", urljoin(ctx.base_url, src), confidence, "logo image", ctx)
        return
