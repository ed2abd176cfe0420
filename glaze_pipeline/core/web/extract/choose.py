"""Choosing among several candidates for one field, with a reason a user can read for every loser.

Per field, candidates are ranked by the field's rules (`rules`: a general inbox over a staff
member's address, the company's own domain over a regulator's, the headquarters over a branch,
a phone over a labelled fax, the page's own logo over a client's), then by how much of the site
supports them. The first is chosen; the others stay, with the rule they lost on. Nothing here sets
a confidence: `calibration` turns the standing and the features into the measured probability.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from glaze_pipeline.core.web.extract.base import Clue, region_of
from glaze_pipeline.core.web.extract.candidate import Candidate, Rule, Site, domain_spans, group
from glaze_pipeline.core.web.extract.rules import disqualified, email_domain, email_kind, field_rules, flavour

_MAX_CANDIDATES = 25  # per field: a directory page (40 offices) says nothing more past the first 25

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


def choose_field(candidates: list[Candidate], site: Site, first_rule: Rule | None = None) -> list[Candidate]:
    """Candidates of one field best first: the first chosen, the others lost with their reason.

    When even the best one cannot be the company's (only a fax, only a partner's logo), none is chosen:
    they all stay as lost candidates, so the field is honestly empty rather than wrong.
    """
    rules = field_rules(candidates[0].field, site)
    ranked = _rank(candidates, rules, first_rule)[:_MAX_CANDIDATES]
    all_rules = [first_rule, *rules] if first_rule else rules
    winner = ranked[0]
    for candidate in ranked:
        candidate.flavour = flavour(candidate, site)
        candidate.rivals = len(candidates) - 1
    if why := disqualified(winner, site):
        for candidate in ranked:
            candidate.standing, candidate.lost_on = "lost", "rule"
            candidate.reason = f"{disqualified(candidate, site) or why}; no value chosen"
        return ranked
    if len(ranked) == 1:
        return ranked
    winner.standing = "chosen"
    winner.reason = f"chosen over {len(ranked) - 1} other value(s)"
    for loser in ranked[1:]:
        loser.standing = "lost"
        loser.reason = _explain(winner, loser, all_rules)
        if why := disqualified(loser, site):
            loser.reason, loser.lost_on = why, "rule"
    return ranked


def _names_support(names: list[Candidate]) -> None:
    """A longer name containing a shorter one ("Toronto plumbing Mister Plumber") supports the shorter."""
    for short in names:
        if len(short.key) < 4:
            continue
        for longer in names:
            if longer is not short and short.key in longer.key:
                short.extra_methods |= longer.methods


def _at(places: frozenset[str]) -> Callable[[Candidate], int]:
    """Whether a candidate was read from one of these addresses (the chosen city's)."""
    return lambda c: int(any(x.place in places for x in c.clues))


def choose(clues: Sequence[Clue], site: Site) -> list[Candidate]:
    """Every field's candidates, ranked; city first so country and location follow the chosen address."""
    by_field = group([*clues, *domain_spans(clues, site.brand)])
    emails = by_field.get("company_email", [])
    site.people = sum(email_kind(c.value, site) == "person" for c in emails)
    site.own_emails = sum(email_domain(c.value, site) == "own" for c in emails)
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
            same_place = ("another address than the chosen city's", _at(frozenset(chosen_places)))
        ranked = choose_field(by_field[name], site, same_place)
        if name == "company_city":
            chosen_places = {x.place for x in ranked[0].clues if x.place}
        result.extend(ranked)
    return result
