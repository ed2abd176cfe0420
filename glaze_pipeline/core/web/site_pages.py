"""Which pages of a company site to crawl after the homepage: about, contact, team and legal pages.

Legal notices (imprint / Impressum / mentions légales) state the legal name, address and phone
by law in much of Europe, and contact pages state the rest, so those rank first. Pure: links in,
URLs out.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urldefrag, urljoin, urlsplit

# Words, folded to ASCII and lowercase, that name a kind of page in the common European languages.
# Lower rank = more worth a request.
PAGE_KINDS: dict[str, tuple[int, tuple[str, ...]]] = {
    "legal": (
        0,
        (
            "imprint", "impressum", "legal notice", "legal", "mentions legales", "aviso legal", "note legali",
            "colofon", "informacion legal", "nota legal", "wettelijke informatie", "stopka redakcyjna",
        ),
    ),
    "contact": (
        1,
        (
            "contact", "contact us", "contacts", "kontakt", "contacto", "contato", "contatti", "contattaci",
            "contactez nous", "get in touch", "yhteystiedot", "kontakta oss", "kontakt os", "locations", "offices",
        ),
    ),
    "about": (
        2,
        (
            "about", "about us", "company", "who we are", "our story", "ueber uns", "uber uns", "unternehmen",
            "a propos", "qui sommes nous", "entreprise", "societe", "sobre nosotros", "quienes somos", "empresa",
            "chi siamo", "azienda", "over ons", "bedrijf", "sobre nos", "sobre", "o nas", "firma", "om oss",
            "om os", "foretaget", "virksomheden", "yritys", "meista", "o spolecnosti", "profile", "history",
        ),
    ),
    "team": (
        3,
        ("team", "our team", "people", "leadership", "management", "equipe", "equipo", "equipa", "zespol"),
    ),
}  # fmt: skip

_SEPARATORS = re.compile(r"[\s\-_/.+%]+")
_SKIPPED_SUFFIXES = (".pdf", ".jpg", ".jpeg", ".png", ".gif", ".svg", ".zip", ".doc", ".docx", ".xls", ".mp4")


def _fold(text: str) -> str:
    """ "Über-uns" -> "uber uns": accents dropped, separators to single spaces, lowercase."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    return " ".join(_SEPARATORS.split(ascii_text)).strip()


def _kind_of(words: str) -> tuple[int, str] | None:
    """(rank, kind) of the best page kind whose word appears as whole words in `words`."""
    padded = f" {words} "
    best: tuple[int, str] | None = None
    for kind, (rank, names) in PAGE_KINDS.items():
        if any(f" {name} " in padded for name in names) and (best is None or rank < best[0]):
            best = (rank, kind)
    return best


def site_key(host: str) -> str:
    """A host without "www.", for same-site comparisons."""
    return host.lower().rstrip(".").removeprefix("www.")


def same_site(url: str, home_url: str) -> bool:
    """The same host as the homepage, or one of its subdomains (www. ignored); http(s) only."""
    try:
        parts, home = urlsplit(url), urlsplit(home_url)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.hostname or not home.hostname:
        return False
    host, home_host = site_key(parts.hostname), site_key(home.hostname)
    return host == home_host or host.endswith("." + home_host)


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Candidate:
    url: str
    kind: str
    rank: tuple[int, int, int]


def choose_pages(links: Iterable[Link], home_url: str, limit: int) -> list[str]:
    """Up to `limit` same-site URLs, one per kind first (legal, contact, about, team), then the next best.

    The path counts before the link text ("/impressum" says more than a link reading "More"), and
    shallow paths before deep ones (a site's /about beats a blog post about something).
    """
    home = urldefrag(home_url)[0]
    seen: set[str] = {home, home.rstrip("/")}
    candidates: list[Candidate] = []
    for order, link in enumerate(links):
        try:
            url = urldefrag(urljoin(home, link.href.strip()))[0]
            path = urlsplit(url).path
        except ValueError:
            continue
        if (
            url in seen
            or url.rstrip("/") in seen
            or not same_site(url, home)
            or path.lower().endswith(_SKIPPED_SUFFIXES)
        ):
            continue
        by_path = _kind_of(_fold(path))
        by_text = _kind_of(_fold(link.text)) if len(link.text) <= 40 else None
        found = by_path or by_text
        if found is None:
            continue
        seen.update((url, url.rstrip("/")))
        depth = len([p for p in path.split("/") if p])
        candidates.append(Candidate(url, found[1], (found[0], 0 if by_path else 1, depth * 1000 + order)))
    candidates.sort(key=lambda c: c.rank)
    chosen: list[Candidate] = []
    for candidate in candidates:  # the best of each kind first
        if len(chosen) < limit and all(c.kind != candidate.kind for c in chosen):
            chosen.append(candidate)
    for candidate in candidates:
        if len(chosen) < limit and candidate not in chosen:
            chosen.append(candidate)
    return [c.url for c in chosen]
