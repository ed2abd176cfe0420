"""Markup a site writes for machines and for navigation: meta and OpenGraph tags, the title, the logo, links."""

from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import islice
from urllib.parse import unquote, urljoin, urlsplit

import lxml.html

from glaze_pipeline.core.model.fields import normalise_country
from glaze_pipeline.core.web.extract.base import (
    Clue,
    Context,
    brand_of,
    clue,
    compact,
    emails,
    host_of,
    phone_e164,
    socials,
)


def _meta(doc: lxml.html.HtmlElement) -> Iterator[tuple[str, str]]:
    """(lowercased property-or-name, content) for every <meta> that has both."""
    for meta in doc.iter("meta"):
        key = (meta.get("property") or meta.get("name") or "").strip().lower()
        content = meta.get("content")
        if key and content and content.strip():
            yield key, content


def site_root(url: str) -> str | None:
    """The website a page belongs to: scheme and host, since a company's website is its site, not one page."""
    parts = urlsplit(url.strip() if "://" in url else "https://" + url.strip())
    return f"{parts.scheme}://{parts.hostname}" if parts.hostname else None


def _named(content: str, method: str, what: str, ctx: Context) -> Clue | None:
    """A name from a tag that may carry a tagline too ("Acme - Widgets for everyone")."""
    named = brand_from_title(content, ctx.brand)
    if named is None:
        return None
    name, confirmed = named
    traits = {"brand"} if confirmed else set()
    if name != content.strip():
        traits.add("tagline-cut")
    return clue("company_name", name, method, what, ctx, traits)


def from_meta(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    page = {"home"} if ctx.is_home else {"inner"}
    for key, content in _meta(doc):
        if key in ("og:site_name", "application-name"):
            yield _named(content, "meta", f"meta {key}", ctx)
        elif key in ("description", "og:description"):
            # An article's description describes the article, not the company.
            yield clue("company_description", content, "meta", f"meta {key}", ctx, page)
        elif key == "og:logo" or (key == "og:image" and "logo" in content.lower()):
            yield clue("company_logo_url", urljoin(ctx.base_url, content), "meta", f"meta {key}", ctx)
        elif key == "og:url":
            yield clue("company_website", site_root(content), "meta", "meta og:url", ctx)
        elif key in ("twitter:site", "twitter:creator"):
            handle = content.strip().lstrip("@")
            url = handle if "/" in handle else f"https://x.com/{handle}"
            yield clue("company_twitter", url, "meta", f"meta {key}", ctx)
        elif key == "geo.placename":  # a town, or sometimes only the country ("USA")
            place = content.split(",")[0]
            field = "company_country" if normalise_country(place) else "company_city"
            yield clue(field, place, "meta", "meta geo.placename", ctx)
        elif key == "geo.region":
            yield clue("company_country", content.split("-")[0], "meta", "meta geo.region", ctx)


def from_site(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """The site answered at this address: its root is the company's website."""
    yield clue("company_website", site_root(ctx.page_url), "site", "the site itself", ctx)


# --- <title> --------------------------------------------------------------------------------------------

# Spaced dashes only: "Hewlett-Packard" is one name. "::" and ":" end a brand ("VisionProject :: Web tool").
_TITLE_SEPARATORS = re.compile(r"\s+[-–—|·•»:]+\s+|\s*[|•»]\s*|::|:\s+|\s+:$")
_GENERIC_TITLES = {
    "home", "homepage", "home page", "welcome", "index", "about", "about us", "contact", "contact us", "contacts",
    "us", "start", "startseite", "accueil", "inicio", "main", "news", "blog", "impressum", "imprint", "kontakt",
    "loading", "logo", "image", "banner", "header", "menu", "search", "close", "open",
}  # fmt: skip
_WELCOME = re.compile(r"^(?:welcome to|about|contact)\s+", re.IGNORECASE)
_BRAND_MAX_WORDS = 5


def _title_parts(title: str) -> list[str]:
    parts = []
    for part in _TITLE_SEPARATORS.split(title):
        part = part.strip()
        if not part or part.lower() in _GENERIC_TITLES:
            continue
        part = _WELCOME.sub("", part).strip()
        if part and part.lower() not in _GENERIC_TITLES and len(part.split()) <= _BRAND_MAX_WORDS:
            parts.append(part)
    return parts


def brand_from_title(title: str, brand: str) -> tuple[str, bool] | None:
    """The brand part of a title, and whether the domain confirms it; None when every part is a sentence."""
    parts = _title_parts(title)
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


def from_title(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    title = doc.find(".//title")
    brand = brand_from_title(title.text_content(), ctx.brand) if title is not None else None
    if brand is not None:
        name, confirmed = brand
        yield clue("company_name", name, "title", "title", ctx, {"brand"} if confirmed else ())


# --- links ----------------------------------------------------------------------------------------------


def from_phone_links(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """tel: links; a national number needs the site's region to be read."""
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        if href[:4].lower() == "tel:":
            traits = {"guessed-region"} if ctx.region_guessed and not href[4:].lstrip().startswith("+") else ()
            yield clue("company_phone", phone_e164(href[len("tel:") :], ctx.region), "link", "tel link", ctx, traits)


def from_links(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """mailto: links, Cloudflare-protected addresses and social profiles."""
    for anchor in doc.iter("a"):
        href = (anchor.get("href") or "").strip()
        lowered = href.lower()
        if lowered.startswith("mailto:"):
            yield from emails(unquote(href[len("mailto:") :]), "link", "mailto link", ctx)
        elif lowered.startswith("tel:"):
            continue  # from_phone_links
        elif "/cdn-cgi/l/email-protection#" in lowered:
            yield from emails(cloudflare_email(href.rsplit("#", 1)[1]), "link", "cloudflare-protected link", ctx)
        elif href:
            yield from socials(href, "link", "link", ctx)
    for element in doc.xpath("//*[@data-cfemail]"):
        yield from emails(cloudflare_email(element.get("data-cfemail", "")), "text", "cloudflare-protected text", ctx)


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

# Words in an image's file name, class or id (or its containers') that mark someone else's logo, or many.
_NOT_OUR_LOGO = (
    "sprite", "badge", "award", "seal", "certif", "partner", "client", "customer", "member", "sponsor", "payment",
    "visa", "mastercard", "paypal", "trust", "accredit", "bbb", "facebook", "twitter", "linkedin", "instagram",
    "youtube", "google", "apple", "appstore", "powered", "carousel", "slide", "testimonial", "press", "featured",
    "affiliat", "gallery",
)  # fmt: skip
# A word marks another's logo when it is one of these, or (for stems of five letters or more) starts with one.
_NOT_OUR_WORD = re.compile(
    "|".join(s for s in _NOT_OUR_LOGO if len(s) >= 5) + "|(?:" + "|".join(s for s in _NOT_OUR_LOGO if len(s) < 5) + ")$"
)
_LOGO_HINT = re.compile(r"logo", re.IGNORECASE)
_HOME_PATH = re.compile(r"^/?(?:(?:index|home|default)(?:\.\w+)?)?/?$", re.IGNORECASE)
_MAX_LOGO_CANDIDATES = 6


def _describes(element: lxml.html.HtmlElement) -> str:
    parts = [element.get(a) or "" for a in ("src", "alt", "class", "id", "title")]
    for parent in islice(element.iterancestors(), 3):
        parts += [parent.get("class") or "", parent.get("id") or ""]
    return " ".join(parts)


def _not_ours(element: lxml.html.HtmlElement, src: str, brand: str) -> bool:
    """Whether the file name, class or id words mark another organisation's mark (never the alt prose)."""
    # The domain serving the image counts too: google.com/uds/css/small-logo.png is Google's mark.
    named = [*src.rsplit("/", 2)[-2:], brand_of(src), element.get("class") or "", element.get("id") or ""]
    for parent in islice(element.iterancestors(), 3):
        named += [parent.get("class") or "", parent.get("id") or ""]
    words = {w for w in re.split(r"[^a-z]+", " ".join(named).lower()) if w and w != brand}
    return any(_NOT_OUR_WORD.match(w) for w in words)


def _link_target(element: lxml.html.HtmlElement, ctx: Context) -> str | None:
    anchor = next((a for a in element.iterancestors("a")), None)
    return urljoin(ctx.base_url, anchor.get("href") or "") if anchor is not None else None


def _brand_file(src: str, ctx: Context) -> bool:
    """An image whose file is named after the brand ("acme-2x.png" on acme.com)."""
    return bool(ctx.brand) and len(ctx.brand) >= 4 and ctx.brand in compact(src.rsplit("/", 1)[-1])


def _logo_traits(image: lxml.html.HtmlElement, src: str, ctx: Context) -> set[str]:
    """Where the image sits and where it leads: the page's own logo links home from the header."""
    traits = set()
    target = _link_target(image, ctx)
    if target is not None:
        host = host_of(target).removeprefix("www.")
        if host and ctx.site_host and host != ctx.site_host and brand_of(target) != ctx.brand:
            traits.add("offsite")  # a partner's or a client's mark, linking to their own site
        elif host_of(target).removeprefix("www.") == ctx.site_host and _HOME_PATH.match(urlsplit(target).path):
            traits.add("home-link")
    if image.xpath("boolean(ancestor::header | ancestor::*[contains(concat(@id, @class), 'header')])"):
        traits.add("header")
    if _brand_file(src, ctx):
        traits.add("brand")
    if _not_ours(image, src, ctx.brand):
        traits.add("not-ours")
    return traits


def from_logo(doc: lxml.html.HtmlElement, ctx: Context) -> Iterator[Clue | None]:
    """Images named as a logo or after the brand, with where they sit; the choice step tells ours from others'."""
    seen = 0
    for image in doc.iter("img"):
        src = image.get("src") or image.get("data-src") or ""
        if not src or src.startswith("data:"):
            continue
        if not _LOGO_HINT.search(_describes(image)) and not _brand_file(src, ctx):
            continue
        traits = _logo_traits(image, src, ctx)
        found = clue("company_logo_url", urljoin(ctx.base_url, src), "logo", "logo image", ctx, traits)
        if found is None:
            continue
        yield found
        # The alt text of the page's own logo names the company ("Zynk Design - Interior Architects").
        alt = (image.get("alt") or "").strip()
        if alt and not traits & {"offsite", "not-ours"} and traits & {"home-link", "header", "brand"}:
            yield _named(alt, "logo", "logo alt text", ctx) if "logo" not in alt.lower() else None
        seen += 1
        if seen >= _MAX_LOGO_CANDIDATES:
            return
