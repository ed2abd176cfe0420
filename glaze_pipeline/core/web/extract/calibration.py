"""Confidence that means what it says: the measured share of right values among candidates like this one.

A candidate is described by a chain of features, coarse to fine: its field group, its standing
(the only candidate, chosen over others, or lost), the field's own quality label (a general inbox,
a labelled fax, a headquarters address, ...), the kind of statement (structured data, a meta tag,
a link, text) and whether several statements agree. `confidence.json` holds, for every prefix of
that chain, how many candidates the fit split of the labelled corpus had and how many were right
(bench/fit_confidence.py writes it). A candidate's confidence is the share of right ones at the
finest prefix, shrunk towards the prefix above in proportion to how few it rests on, so a rare
combination borrows from its field instead of claiming 0 % or 100 % from three examples.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from glaze_pipeline.core.web.extract.candidate import METHOD_STRENGTH, Candidate

TABLE = Path(__file__).with_name("confidence.json")
ROOT = "*"
LOWEST, HIGHEST = 1, 99  # measured shares are never quite 0 or 1: neither is the confidence

_GROUPS = {
    "company_linkedin": "social",
    "company_twitter": "social",
    "company_facebook": "social",
    "company_instagram": "social",
    "company_youtube": "social",
    "company_github": "social",
}
# The statement families a method belongs to, so a rare method borrows from its family's record.
_FAMILY = {"structured": "structured", "meta": "meta", "link": "link", "logo": "markup", "title": "markup",
           "site": "site", "text": "text", "domain": "text"}  # fmt: skip


# The features a chain may use, and the order bench/fit_confidence.py chose by held-out loss on the fit split.
FEATURES = ("field", "outcome", "standing", "margin", "flavour", "method", "support", "crowd")


@dataclass(frozen=True)
class Table:
    smoothing: float  # how many examples the prefix above is worth
    counts: dict[str, tuple[int, int]]  # prefix -> (candidates, right)
    order: tuple[str, ...] = FEATURES  # which features refine the field, coarse to fine
    # (held-out estimate, observed share) points, non-decreasing: takes the shrinkage's bias out
    recalibration: tuple[tuple[float, float], ...] = ()


def describe(candidate: Candidate) -> dict[str, str]:
    """The candidate's features: its field group, standing, the field's quality label, statement kind, support."""
    best = max(sorted(candidate.methods), key=lambda m: METHOD_STRENGTH.get(m, 0))
    return {
        "field": _GROUPS.get(candidate.field, candidate.field.removeprefix("company_")),
        "outcome": "lost" if candidate.standing == "lost" else "won",  # sole and chosen values share a record
        "standing": candidate.standing,
        "margin": candidate.lost_on or "won",  # lost to a rule, or only to a value stated more often
        "flavour": candidate.flavour,
        "method": _FAMILY.get(best, best),
        "support": candidate.support,
        # A loser among two or three is often an equally right alternative; among twenty, a directory entry.
        "crowd": "few" if candidate.rivals <= 2 else "many",
    }


def chain(described: dict[str, str], order: tuple[str, ...] = FEATURES) -> list[str]:
    """Prefixes coarse to fine, in the table's order: "chosen", "chosen|email", "chosen|email|won", ..."""
    parts = [described[name] for name in (order if "field" in order else ("field", *order))]
    return ["|".join(parts[: i + 1]) for i in range(len(parts))]


def features(candidate: Candidate, table: Table | None = None) -> list[str]:
    return chain(describe(candidate), (table or load_table()).order)


@cache
def load_table(path: Path = TABLE) -> Table:
    data = json.loads(path.read_text(encoding="utf-8"))
    counts = {key: (int(n), int(right)) for key, (n, right) in data["counts"].items()}
    points = tuple((float(p), float(a)) for p, a in data.get("recalibration", ()))
    return Table(float(data["smoothing"]), counts, tuple(data.get("order", FEATURES)), points)


def recalibrate(p: float, points: tuple[tuple[float, float], ...]) -> float:
    """The observed share at estimate p, read off the held-out curve (linear between its points)."""
    if not points:
        return p
    if p <= points[0][0]:
        return points[0][1]
    for (p0, a0), (p1, a1) in itertools.pairwise(points):
        if p <= p1:
            return a0 + (a1 - a0) * (p - p0) / (p1 - p0) if p1 > p0 else a1
    return points[-1][1]


def probability(prefixes: list[str], table: Table) -> float:
    """The share of right candidates at the finest prefix, each level shrunk towards the one above it."""
    n, right = table.counts.get(ROOT, (0, 0))
    p = (right + 1) / (n + 2)  # Laplace: never exactly 0 or 1
    for prefix in prefixes:
        n, right = table.counts.get(prefix, (0, 0))
        p = (right + table.smoothing * p) / (n + table.smoothing)
    return p


def confidence(candidate: Candidate, table: Table | None = None) -> int:
    table = table or load_table()
    p = recalibrate(probability(features(candidate, table), table), table.recalibration)
    return max(LOWEST, min(HIGHEST, round(100 * p)))
