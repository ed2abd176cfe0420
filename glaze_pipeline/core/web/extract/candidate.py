"""The extractor's candidates: the clues that state one value, grouped, with what the choice needs of the site.

Clues that state the same thing become one candidate: a brand and its legal name ("Acme" and
"Acme Ltd"), a town written two ways, the same image on www. and on the bare host. Where the
longer names a site gives disagree, the words among them that spell the domain are a candidate too.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from dataclasses import field as default

from glaze_pipeline.core.web.extract.base import Clue, compact, host_of
from glaze_pipeline.core.web.extract.text import LEGAL_FORM

METHOD_STRENGTH = {"structured": 6, "meta": 5, "link": 4, "logo": 3, "title": 2, "site": 2, "text": 1}


@dataclass
class Site:
    """What the choice needs to know about the company's site."""

    host: str  # without "www."
    brand: str  # the domain label, compacted
    names: frozenset[str] = frozenset()  # compacted names the pages give the company, to recognise its domains
    people: int = 0  # personal addresses on the pages: three or more are a staff directory
    own_emails: int = 0  # addresses on the site's own domain


@dataclass
class Candidate:
    field: str
    value: str
    clues: list[Clue]
    order: int  # position of the first clue: earlier statements win ties
    key: str = ""  # what it states, compared loosely (see _key)
    rivals: int = 0  # how many other candidates the field had
    lost_on: str = ""  # "rule" when a choice rule ruled it out, "support" when it was only stated less
    standing: str = "sole"  # sole, chosen or lost
    reason: str = ""
    flavour: str = ""  # the field's own quality label, a feature of the calibration
    extra_methods: set[str] = default(default_factory=set)  # support from outside the pages (the domain)

    @property
    def methods(self) -> set[str]:
        return {c.method for c in self.clues} | self.extra_methods

    @property
    def pages(self) -> set[str]:
        return {c.page for c in self.clues}

    @property
    def traits(self) -> set[str]:
        return set().union(*(c.traits for c in self.clues))

    @property
    def strength(self) -> int:
        return max(METHOD_STRENGTH.get(m, 0) for m in self.methods)

    @property
    def support(self) -> str:
        """ "agreed" when more than one kind of statement, page or mention says it."""
        several = len(self.methods) >= 2 or len(self.pages) >= 2 or len(self.clues) >= 3
        return "agreed" if several else "single"

    def best_clue(self) -> Clue:
        return max(self.clues, key=lambda c: (METHOD_STRENGTH.get(c.method, 0), -self.clues.index(c)))


# A rule: its name in a sentence, and how well a candidate meets it (higher is better).
Rule = tuple[str, Callable[[Candidate], int]]


# --- grouping -------------------------------------------------------------------------------------------

_LEGAL_SUFFIX = re.compile(rf"[\s,]+(?:{LEGAL_FORM})\s*$", re.IGNORECASE)


def _key(clue: Clue) -> str:
    """Values that state the same thing: a brand and its legal name, a town written two ways."""
    if clue.field == "company_name":
        return compact(_LEGAL_SUFFIX.sub("", clue.value)) or compact(clue.value)
    if clue.field in ("company_city", "company_hq_location"):
        return compact(clue.value.split(",")[0])
    if clue.field == "company_website":
        return host_of(clue.value).removeprefix("www.")
    if clue.field == "company_logo_url":  # the same image on www. and on the bare host
        return clue.value.replace("://www.", "://", 1)
    return clue.value.casefold() if clue.field in ("company_email", "company_twitter") else clue.value


def _shown(clues: list[Clue]) -> str:
    """The value to show for a group: a brand before its legal name, the fullest location, else the most said."""
    values = [c.value for c in clues]
    if clues[0].field == "company_name":
        brands = [v for v in values if not _LEGAL_SUFFIX.search(v)]
        return max(brands or values, key=lambda v: (values.count(v), -values.index(v)))
    if clues[0].field == "company_hq_location":
        return max(values, key=lambda v: (v.count(","), values.count(v)))
    if clues[0].field == "company_website":  # the address the site answered at, else the one it declares
        return next((c.value for c in clues if c.method == "site"), values[0])
    return max(values, key=lambda v: (values.count(v), -values.index(v)))


def group(clues: Sequence[Clue]) -> dict[str, list[Candidate]]:
    """Candidates per field, in the order their first clue was seen."""
    groups: dict[tuple[str, str], list[Clue]] = {}
    first: dict[tuple[str, str], int] = {}
    for position, clue in enumerate(clues):
        key = (clue.field, _key(clue))
        groups.setdefault(key, []).append(clue)
        first.setdefault(key, position)
    by_field: dict[str, list[Candidate]] = {}
    for key, members in groups.items():
        by_field.setdefault(key[0], []).append(Candidate(key[0], _shown(members), members, first[key], key[1]))
    return by_field


def domain_spans(clues: Sequence[Clue], brand: str) -> list[Clue]:
    """The words of a name that spell the domain ("Erin Clark" in "Erin Clark Dallas Website Design" on
    erinclark.com): the brand itself, which the longer names then support."""
    derived: dict[str, list[Clue]] = {}  # span -> the clues it was cut from
    for clue in clues:
        if clue.field != "company_name" or "brand" not in clue.traits or len(brand) < 4:
            continue
        words = clue.value.split()
        for i in range(len(words)):
            for j in range(i + 1, len(words) + 1):
                span = " ".join(words[i:j]).strip(" ,.:;-|")
                if compact(span) == brand and span != clue.value:
                    derived.setdefault(span, []).append(clue)
    # Only where the names around it disagree ("Erin Clark Dallas Website Design", "Erin Clark Web Design &
    # Graphics"): one name that merely goes on past the domain ("Enterprise Wood Products") is the name.
    return [
        replace(c, value=span, what=f"{c.what} (the words spelling the domain)")
        for span, sources in derived.items()
        if len({_key(c) for c in sources}) >= 2
        for c in sources
    ]
