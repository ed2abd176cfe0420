"""URL normalisation: turn whatever a user pasted into one canonical entity with a stable row key.

Pure string work, no network: whether a host is safe to fetch is the fetch guard's job.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, unquote_plus, urlsplit

import idna

from glaze_pipeline.core.model.fields import EntityType
from glaze_pipeline.errors import GlazeError

MAX_URL_LENGTH = 2048

# Query parameters that only say where a click came from; dropping them lets two
# links to the same page dedupe. Compared lowercased.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        "gclid",
        "fbclid",
        "msclkid",
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "ref",
        "ref_src",
        "igshid",
        "si",
        "trk",
        "trackingid",
        "lipi",
        "originalsubdomain",
    }
)

# Spreadsheets and chat tools wrap URLs in quotes, angle brackets or invisible spaces.
_SURROUNDING = " \t\r\n\f\v\u00a0\u200b\u200c\u200d\u2060\ufeff\u3000\"'`<>“”‘’«»"
_SCHEME_WITH_SLASHES = re.compile(r"^([a-z][a-z0-9+.\-]*)://", re.IGNORECASE)
# "mailto:x", "tel:+1…", "http:acme.com"; a digit after the colon means host:port instead.
_SCHEME_ONLY = re.compile(r"^([a-z][a-z0-9+\-]*):(?!\d)", re.IGNORECASE)
_LABEL = re.compile(r"^[a-z0-9](?:[a-z0-9\-]{0,61}[a-z0-9])?$")
_TLD = re.compile(r"^(?:[a-z]{2,63}|xn--[a-z0-9\-]{1,59})$")
_PUB_ID = re.compile(r"^[0-9a-f]{1,3}$")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_LINKEDIN = "linkedin.com"
_LINKEDIN_COMPANY_KINDS = frozenset({"company", "school", "showcase"})


class InvalidUrl(GlazeError, ValueError):
    """A value that cannot become an entity; the message is the reason a user sees in rejects."""


@dataclass(frozen=True)
class Entity:
    """What one input URL identifies; `row_key` is the same for every spelling of the same entity."""

    input_url: str
    normalized_url: str
    entity_type: EntityType
    entity_id: str
    row_key: str


def make_row_key(entity_type: EntityType, entity_id: str) -> str:
    """Stable across tables and runs, so a row key can key caches and upserts."""
    digest = hashlib.sha256(f"{entity_type.value}\n{entity_id}".encode()).hexdigest()
    return digest[:24]


def parse_entity(raw: str) -> Entity:
    """Normalise one user-supplied URL or bare domain; raise InvalidUrl with a human reason."""
    text = raw.strip(_SURROUNDING)
    if not text:
        raise InvalidUrl("empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise InvalidUrl(f"URL longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in text):
        raise InvalidUrl(f"not a URL: {_show(text)}")

    url, had_scheme = _with_scheme(text)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise InvalidUrl(f"not a URL: {_show(text)}") from exc
    if "@" in parts.netloc:
        if not had_scheme:
            raise InvalidUrl(f"looks like an email address, not a URL: {_show(text)}")
        raise InvalidUrl("URLs with a user name or password are not supported")
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidUrl("invalid port") from exc

    host, is_ip = _normalise_host(parts.hostname or "", text, had_scheme)
    if not is_ip and host.startswith("www.") and host.count(".") >= 2:
        host = host[4:]

    if host == _LINKEDIN or host.endswith("." + _LINKEDIN):
        return _linkedin_entity(raw.strip(), host, parts.path)
    if host == "lnkd.in":
        raise InvalidUrl("LinkedIn short links (lnkd.in) are not supported: use the full linkedin.com URL")
    return _website_entity(raw.strip(), parts, host, is_ip, port)


def _with_scheme(text: str) -> tuple[str, bool]:
    """Add https:// to bare domains, repair `https:/x`-style typos, refuse non-web schemes."""
    if text.startswith("//"):
        return "https:" + text, False
    match = _SCHEME_WITH_SLASHES.match(text) or _SCHEME_ONLY.match(text)
    if not match:
        return "https://" + text, False
    scheme = match.group(1).lower()
    if scheme not in _DEFAULT_PORTS:
        raise InvalidUrl(f"unsupported scheme {scheme!r}")
    rest = text[len(scheme) + 1 :].lstrip("/\\")
    return f"{scheme}://{rest}", True


def _normalise_host(hostname: str, text: str, had_scheme: bool) -> tuple[str, bool]:
    """Lowercase ASCII host (punycode for IDN) and whether it is an IP literal."""
    if not hostname:
        raise InvalidUrl("no host" if had_scheme else f"not a URL: {_show(text)}")
    if ":" in hostname:
        try:
            return ipaddress.IPv6Address(hostname).compressed, True
        except ValueError as exc:
            raise InvalidUrl(f"invalid host {hostname!r}") from exc
    hostname = hostname.removesuffix(".")
    try:
        return str(ipaddress.IPv4Address(hostname)), True
    except ValueError:
        pass
    host = hostname if hostname.isascii() else _punycode(hostname)
    host = host.lower()
    labels = host.split(".")
    valid = (
        len(host) <= 253
        and len(labels) >= 2
        and all(_LABEL.match(label) for label in labels)
        and _TLD.match(labels[-1]) is not None
    )
    if not valid:
        if not had_scheme:
            raise InvalidUrl(f"not a URL: {_show(text)}")
        reason = "is not a domain name (no dot)" if "." not in host else "is not a valid host name"
        raise InvalidUrl(f"host {hostname!r} {reason}")
    return host, False


def _punycode(hostname: str) -> str:
    """IDNA 2008 with UTS 46 mapping first; Python's IDNA 2003 codec for names it refuses."""
    try:
        return idna.encode(hostname, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError):
        pass
    try:
        return hostname.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidUrl(f"invalid host {hostname!r}") from exc


def _website_entity(input_url: str, parts: SplitResult, host: str, is_ip: bool, port: int | None) -> Entity:
    scheme = parts.scheme.lower()
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS[scheme]:
        netloc += f":{port}"
    path = parts.path.rstrip("/")
    query = _clean_query(parts.query)
    normalized = f"{scheme}://{netloc}{path}" + (f"?{query}" if query else "")
    # The company is the host: acme.com/en and acme.com/de must share one row.
    return Entity(
        input_url=input_url,
        normalized_url=normalized,
        entity_type=EntityType.COMPANY_WEBSITE,
        entity_id=host,
        row_key=make_row_key(EntityType.COMPANY_WEBSITE, host),
    )


def _clean_query(query: str) -> str:
    """Drop tracking parameters, sort the rest by name (stable, so repeated names keep their order)."""
    kept: list[tuple[str, str]] = []
    for pair in query.split("&"):
        if not pair:
            continue
        name = unquote_plus(pair.split("=", 1)[0]).lower()
        if name.startswith("utm_") or name in TRACKING_PARAMS:
            continue
        kept.append((pair.split("=", 1)[0], pair))
    kept.sort(key=lambda item: item[0])
    return "&".join(pair for _, pair in kept)


def _linkedin_entity(input_url: str, host: str, path: str) -> Entity:
    """Company and profile pages only: feeds, jobs and posts do not identify an entity."""
    subdomain = host.removesuffix(_LINKEDIN).removesuffix(".")
    # www. is gone already; m. and country editions (de., uk.) show the same page.
    if subdomain and subdomain != "m" and len(subdomain) != 2:
        raise InvalidUrl("LinkedIn URL is not a company or profile page")
    segments = [segment for segment in path.split("/") if segment]
    kind = segments[0].lower() if segments else ""
    if kind in _LINKEDIN_COMPANY_KINDS and len(segments) >= 2:
        slug = segments[1].lower()
        entity_type, entity_id = EntityType.LINKEDIN_COMPANY, f"{_LINKEDIN}/company/{slug}"
    elif kind == "in" and len(segments) >= 2:
        slug = segments[1].lower()
        entity_type, entity_id = EntityType.LINKEDIN_PERSON, f"{_LINKEDIN}/in/{slug}"
    elif kind == "pub" and (pub_slug := _pub_slug(segments[1:])):
        entity_type, entity_id = EntityType.LINKEDIN_PERSON, f"{_LINKEDIN}/in/{pub_slug}"
    else:
        raise InvalidUrl("LinkedIn URL is not a company or profile page")
    return Entity(
        input_url=input_url,
        normalized_url=f"https://www.{entity_id}",
        entity_type=entity_type,
        entity_id=entity_id,
        row_key=make_row_key(entity_type, entity_id),
    )


def _pub_slug(segments: list[str]) -> str | None:
    """Old public profiles: /pub/jane-doe/a7/576/b50 redirects to /in/jane-doe-b50576a7."""
    if not segments or segments[0].lower() == "dir":  # /pub/dir/ is a people search
        return None
    name = segments[0].lower()
    if len(segments) == 1:
        return name
    ids = [segment.lower() for segment in segments[1:4]]
    if len(ids) == 3 and all(_PUB_ID.match(part) for part in ids):
        first, middle, last = ids
        return f"{name}-{last.zfill(3)}{middle.zfill(3)}{first}"
    return None


def _show(text: str) -> str:
    """Quote a rejected value for a reason string without letting a huge cell flood it."""
    return repr(text if len(text) <= 80 else text[:77] + "...")
