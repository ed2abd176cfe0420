"""Choosing among several candidates for one field, with a reason a user can read for every loser.

Clues that state the same value become one candidate. Per field, candidates are ranked by rules
that say which statement speaks for the company (a general inbox over a staff member's address,
the company's own domain over a regulator's, the headquarters over a branch, a phone over a
labelled fax, the page's own logo over a client's), then by how much of the site supports them.
The first is chosen; the others stay, with the rule they lost on. Nothing here sets a confidence:
`calibration` turns the standing and the features into the measured probability of being right.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from glaze_pipeline.core.web.extract.base import Clue, brand_of, compact, host_of, region_of
from glaze_pipeline.core.web.extract.text import LEGAL_FORM

# How deliberately each kind of statement is made, to break ties after the rules.
METHOD_STRENGTH = {"structured": 6, "meta": 5, "link": 4, "logo": 3, "title": 2, "site": 2, "text": 1}
_MAX_CANDIDATES = 25  # per field: a directory page (40 offices) says nothing more past the first 25


@dataclass
class Site:
    """What the choice needs to know about the company's site."""

    host: str  # without "www."
    brand: str  # the domain label, compacted
    names: frozenset[str] = frozenset()  # compacted names the pages give the company, to recognise its domains
    people: int = 0  # personal addresses on the pages: three or more are a staff directory


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
    extra_methods: set[str] = field(default_factory=set)  # support from outside the pages (the domain)

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


# --- email ----------------------------------------------------------------------------------------------

_GENERAL = re.compile(
    r"^(?:info|contact|contacts|hello|hi|hallo|hola|office|mail|email|enquiries|enquiry|inquiries|inquiry|"
    r"general|post|kontakt|biuro|reception|welcome|team|mainoffice|headoffice|ask|bonjour|ciao|"
    r"informacion|information|contacto|kontor|toimisto)"
    r"(?:desk|us|team|line|center|centre|\d+)?(?:[.\-_+].*)?$"  # infodesk@, contactus@, info.uk@, info-de@
)
# Desks a customer may write to for anything: as good as a general inbox when the site has none.
_CUSTOMER_DESK = re.compile(r"sales|support|help|service|care|order|reservation|booking|member|enquir|inquir|partner")
# Desks with one narrow purpose (jobs, the press, donations): not the company's contact address.
_NARROW_DESK = re.compile(
    r"career|job|hiring|recruit|\bhr|press|media|\bpr\b|marketing|donation|webmaster|privacy|legal|compliance|"
    r"security|abuse|investor|\bir\b|supplier|purchas|procure|responsib|admin|billing|account|financ|"
    r"invoice|newsletter|events?\b|tech"
)
EMAIL_KINDS = {"general": 3, "desk": 2, "person": 1, "narrow": 0}


def email_kind(address: str, site: Site) -> str:
    """general (info@), desk (sales@, support@), person (a name, or unrecognised) or narrow (careers@, press@)."""
    local = address.split("@", 1)[0].lower()
    if _GENERAL.match(local) or (site.brand and compact(local) == site.brand):
        return "general"
    if _NARROW_DESK.search(local):
        return "narrow"
    return "desk" if _CUSTOMER_DESK.search(local) else "person"


def email_domain(address: str, site: Site) -> str:
    """own (the site's host), sister (the same brand elsewhere, or named after the company) or other."""
    domain = address.rsplit("@", 1)[-1].lower().removeprefix("www.")
    if site.host and (domain == site.host or domain.endswith("." + site.host)):
        return "own"
    label = brand_of("http://" + domain)
    if label and (label == site.brand or any(len(n) >= 4 and (n == label or n in label) for n in site.names)):
        return "sister"
    return "other"


def _email_rules(site: Site) -> list[Rule]:
    return [
        ("another organisation's address, given with its website", lambda c: "foreign" not in c.traits),
        ("an address on another organisation's domain", lambda c: email_domain(c.value, site) != "other"),
        ("a departmental or personal address, not the general inbox", lambda c: EMAIL_KINDS[email_kind(c.value, site)]),
        ("the same brand's domain in another country, not the site's own", lambda c: email_domain(c.value, site) == "own"),
    ]  # fmt: skip


def _email_flavour(candidate: Candidate, site: Site) -> str:
    if "foreign" in candidate.traits:
        return "foreign"
    domain = email_domain(candidate.value, site)
    return (
        "other-domain" if domain == "other" else "sister" if domain == "sister" else email_kind(candidate.value, site)
    )


# --- the other fields -----------------------------------------------------------------------------------


def _everywhere(trait: str) -> Callable[[Candidate], bool]:
    """Whether every statement of a candidate carries the trait (one clean mention clears a number)."""
    return lambda c: all(trait in x.traits for x in c.clues)


_PHONE_RULES: list[Rule] = [
    ("a number in another organisation's contact block", lambda c: not _everywhere("foreign")(c)),
    ("a number the page labels fax", lambda c: not _everywhere("fax")(c)),
    ("not under the headquarters heading", lambda c: "hq" in c.traits),
    ("a branch or division's number", lambda c: not _everywhere("branch")(c)),
    ("an unlabelled number in running text", lambda c: bool(c.methods & {"structured", "link"} or "labelled" in c.traits)),
]  # fmt: skip


def _phone_flavour(c: Candidate) -> str:
    if _everywhere("foreign")(c):
        return "foreign"
    if _everywhere("fax")(c):
        return "fax"
    if "hq" in c.traits:
        return "hq"
    if _everywhere("branch")(c):
        return "branch"
    return "labelled" if c.methods & {"structured", "link"} or "labelled" in c.traits else "plain"


_PLACE_KIND = {"structured": 3, "heading": 3, "postal": 3, "meta": 2, "phrase": 1}


def _place_kind(c: Candidate) -> int:
    kinds = [_PLACE_KIND.get(x.method if x.method != "text" else next(iter(x.traits & set(_PLACE_KIND)), ""), 0)
             for x in c.clues]  # fmt: skip
    return max(kinds, default=0)


_PLACE_RULES: list[Rule] = [
    ("not the headquarters", lambda c: "hq" in c.traits),
    ("a branch or division's address", lambda c: "branch" not in c.traits or "hq" in c.traits),
    ("named in passing, not in a postal address", _place_kind),
    ("not where the company says it is based", lambda c: "based-in" in c.traits),
]


def _place_flavour(c: Candidate) -> str:
    if "hq" in c.traits:
        return "hq"
    if "branch" in c.traits:
        return "branch"
    return {3: "postal", 2: "meta", 1: "phrase"}.get(_place_kind(c), "other")


def names_the_domain(name: str, site: Site) -> bool:
    """Whether a name and the site's domain spell the same brand ("Acme Widgets" on acmewidgets.com, "Lumen" on lumenlabs.io)."""
    squeezed = compact(name)
    return bool(site.brand) and (site.brand in squeezed or (len(squeezed) >= 3 and squeezed in site.brand))


def _name_rules(site: Site) -> list[Rule]:
    return [
        ("not the brand the domain names", lambda c: "brand" in c.traits or names_the_domain(c.value, site)),
        ("fewer kinds of statement agree", lambda c: len(c.methods - {"text"}) + min(len(c.pages), 2)),
    ]


def _name_flavour(c: Candidate, site: Site) -> str:
    agreeing = len(c.methods - {"text"})
    brand = "brand" in c.traits or names_the_domain(c.value, site)
    return ("brand" if brand else "unconfirmed") + ("-many" if agreeing >= 2 else "")


_LOGO_RULES: list[Rule] = [
    ("another organisation's logo (a client, partner or badge)", lambda c: not c.traits & {"offsite", "not-ours"}),
    ("not the logo the site declares in its structured data", lambda c: "structured" in c.methods),
    ("not the logo in the site's header or linking home", lambda c: bool(c.traits & {"header", "home-link"})),
    ("not the logo the site names in its meta tags", lambda c: "meta" in c.methods),
    ("an image named after the brand, not marked as a logo", lambda c: "brand" not in c.traits or len(c.traits) > 1),
]  # fmt: skip


def _logo_flavour(c: Candidate) -> str:
    if c.traits & {"offsite", "not-ours"}:
        return "foreign"
    if c.methods & {"structured", "meta"}:
        return "declared"
    if c.traits & {"header", "home-link"}:
        return "home"
    return "brand-file" if "brand" in c.traits else "plain"


_SECONDARY_ACCOUNT = re.compile(r"career|jobs|recruit|ceo|support|help|news|press|store|shop|fans?$", re.IGNORECASE)


def _handle(url: str) -> str:
    return compact(url.rstrip("/").rsplit("/", 1)[-1])


def _social_rules(site: Site) -> list[Rule]:
    names = {n for n in (site.brand, *site.names) if len(n) >= 3}

    def ours(c: Candidate) -> int:
        handle = _handle(c.value)
        return int(any(n in handle or (len(handle) >= 4 and handle in n) for n in names))

    return [
        ("a secondary account (careers, support, an executive)", lambda c: not _SECONDARY_ACCOUNT.search(_handle(c.value))),
        ("a handle that does not name the company", ours),
    ]  # fmt: skip


def _social_flavour(c: Candidate, site: Site) -> str:
    if _SECONDARY_ACCOUNT.search(_handle(c.value)):
        return "secondary"
    return "declared" if "structured" in c.methods else "link"


_FOUNDED_RULES: list[Rule] = [
    ('only "since", not "founded" or "established"', lambda c: bool(c.methods & {"structured"} or c.traits & {"strong", "kv"})),
    ("not on the about or history page", lambda c: "about" in c.traits),
]  # fmt: skip

_DESCRIPTION_RULES: list[Rule] = [
    (
        "another page's description, not the homepage's",
        lambda c: bool(c.traits & {"home"}) or "structured" in c.methods,
    ),
]


def _rules(field_name: str, site: Site) -> list[Rule]:
    if field_name == "company_email":
        return _email_rules(site)
    if field_name == "company_phone":
        return _PHONE_RULES
    if field_name in ("company_city", "company_country", "company_hq_location"):
        return _PLACE_RULES
    if field_name == "company_name":
        return _name_rules(site)
    if field_name == "company_logo_url":
        return _LOGO_RULES
    if field_name == "company_founded_year":
        return _FOUNDED_RULES
    if field_name == "company_description":
        return _DESCRIPTION_RULES
    if field_name.startswith("company_") and field_name in _SOCIAL:
        return _social_rules(site)
    return []


_SOCIAL = {"company_linkedin", "company_twitter", "company_facebook", "company_instagram", "company_youtube",
           "company_github"}  # fmt: skip


def flavour(c: Candidate, site: Site) -> str:
    """The field's own quality label for a candidate: the feature calibration measures besides its standing."""
    f = c.field
    if f == "company_email":
        return _email_flavour(c, site)
    if f == "company_phone":
        return _phone_flavour(c)
    if f in ("company_city", "company_country", "company_hq_location"):
        return _place_flavour(c)
    if f == "company_name":
        return _name_flavour(c, site)
    if f == "company_logo_url":
        return _logo_flavour(c)
    if f in _SOCIAL:
        return _social_flavour(c, site)
    if f == "company_founded_year":
        return "strong" if c.methods & {"structured"} or c.traits & {"strong", "kv"} else "weak"
    if f == "company_description":
        return "home" if c.traits & {"home"} or "structured" in c.methods else "inner"
    if f == "company_employee_count":
        return "stated" if c.methods & {"structured"} or "kv" in c.traits else "text"
    return "any"


# --- ranking --------------------------------------------------------------------------------------------


def _rank(candidates: list[Candidate], rules: list[Rule], first_rule: Rule | None = None) -> list[Candidate]:
    chain = [first_rule, *rules] if first_rule else rules

    def key(c: Candidate) -> tuple[int, ...]:
        return (*(rule(c) for _, rule in chain), len(c.methods), len(c.pages), len(c.clues), c.strength, -c.order)

    return sorted(candidates, key=key, reverse=True)


def _explain(winner: Candidate, loser: Candidate, rules: list[Rule]) -> str:
    """The first rule the loser meets less well than the winner, in words."""
    loser.lost_on = "rule"
    for text, rule in rules:
        if rule(loser) < rule(winner):
            return f"{text}; chose {winner.value}"
    loser.lost_on = "support"  # as good by every rule: an alternative the site states less
    if len(loser.methods) + len(loser.pages) + len(loser.clues) < len(winner.methods) + len(winner.pages) + len(
        winner.clues
    ):
        return f"stated less often across the site; chose {winner.value}"
    return f"stated later or less deliberately; chose {winner.value}"


def _disqualified(candidate: Candidate, site: Site) -> str | None:
    """Why a value cannot be the company's at all (another organisation's, a fax, a jobs inbox), or None."""
    f = candidate.field
    if f == "company_email" and "foreign" in candidate.traits:
        return "another organisation's address, given with its website"
    if f == "company_email" and email_kind(candidate.value, site) == "narrow":
        return "an inbox for one narrow purpose (jobs, the press, donations), not for contacting the company"
    if f == "company_email" and email_kind(candidate.value, site) == "person" and site.people >= 3:
        return "a staff directory: personal addresses only, no inbox for the company"
    if f == "company_phone" and _everywhere("foreign")(candidate):
        return "a number in another organisation's contact block"
    if f == "company_phone" and _everywhere("fax")(candidate):
        return "a number the page labels fax"
    if f == "company_logo_url" and candidate.traits & {"offsite", "not-ours"}:
        return "another organisation's logo (a client, partner or badge)"
    return None


def choose_field(candidates: list[Candidate], site: Site, first_rule: Rule | None = None) -> list[Candidate]:
    """Candidates of one field best first: the first chosen, the others lost with their reason.

    When even the best one cannot be the company's (only a fax, only a partner's logo), none is chosen:
    they all stay as lost candidates, so the field is honestly empty rather than wrong.
    """
    rules = _rules(candidates[0].field, site)
    ranked = _rank(candidates, rules, first_rule)[:_MAX_CANDIDATES]
    all_rules = [first_rule, *rules] if first_rule else rules
    winner = ranked[0]
    for candidate in ranked:
        candidate.flavour = flavour(candidate, site)
        candidate.rivals = len(candidates) - 1
    if why := _disqualified(winner, site):
        for candidate in ranked:
            candidate.standing, candidate.lost_on = "lost", "rule"
            candidate.reason = f"{_disqualified(candidate, site) or why}; no value chosen"
        return ranked
    if len(ranked) == 1:
        return ranked
    winner.standing = "chosen"
    winner.reason = f"chosen over {len(ranked) - 1} other value(s)"
    for loser in ranked[1:]:
        loser.standing = "lost"
        loser.reason = _explain(winner, loser, all_rules)
        if why := _disqualified(loser, site):
            loser.reason, loser.lost_on = why, "rule"
    return ranked


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


def _names_support(names: list[Candidate]) -> None:
    """A longer name containing a shorter one ("Toronto plumbing Mister Plumber") supports the shorter."""
    for short in names:
        if len(short.key) < 4:
            continue
        for longer in names:
            if longer is not short and short.key in longer.key:
                short.extra_methods |= longer.methods


def choose(clues: Sequence[Clue], site: Site) -> list[Candidate]:
    """Every field's candidates, ranked; city first so country and location follow the chosen address."""
    by_field = group([*clues, *domain_spans(clues, site.brand)])
    site.people = sum(email_kind(c.value, site) == "person" for c in by_field.get("company_email", []))
    _names_support(by_field.get("company_name", []))
    region = region_of("http://" + site.host) if site.host else None
    for candidate in by_field.get("company_country", []):
        if region and candidate.value == region:
            candidate.extra_methods.add("domain")  # the ccTLD agrees: support, never a value on its own
    result: list[Candidate] = []
    chosen_places: set[str] = set()
    for name in sorted(by_field, key=lambda f: f != "company_city"):
        same_place: Rule | None = None
        if name in ("company_country", "company_hq_location") and chosen_places:
            places = frozenset(chosen_places)
            same_place = (
                "another address than the chosen city's",
                lambda c: int(any(x.place in places for x in c.clues)),
            )
        ranked = choose_field(by_field[name], site, same_place)
        if name == "company_city":
            chosen_places = {x.place for x in ranked[0].clues if x.place}
        result.extend(ranked)
    return result
