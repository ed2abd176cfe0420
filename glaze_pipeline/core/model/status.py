"""The one status vocabulary: every (row, field) ends with exactly one of these, and the reason that goes with it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Status(StrEnum):
    FILLED = "filled"
    NOT_FOUND = "not_found"
    NOT_WANTED = "not_wanted"
    SKIPPED_NO_KEY = "skipped_no_key"
    BUDGET_EXHAUSTED = "budget_exhausted"
    BLOCKED = "blocked"  # fetch guard or robots.txt refused the URL
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"
    RATE_LIMITED = "rate_limited"
    PROVIDER_ERROR = "provider_error"
    LLM_FAILED = "llm_failed"
    REJECTED = "rejected"  # failed validation after merge
    # A value was found, but below GLAZE_MIN_CONFIDENCE and beaten by no provider: kept only as a candidate.
    LOW_CONFIDENCE = "low_confidence"
    # Row-level only: some wanted fields filled, others not.
    PARTIAL = "partial"


# The fetch path's reason for a name with no address; the merge ranks it above everything a user could
# configure, because no key or budget helps a row whose address leads nowhere.
DOES_NOT_RESOLVE = "does not resolve"
_DEAD_ADDRESS = (DOES_NOT_RESOLVE, "HTTP 404", "HTTP 410")

# When several providers tried a field and none filled it, the field reports the most useful reason:
# what happened to this row (a budget reached, a block, a timeout) before what is true of every row
# (a provider without a key, which the run reports once, before it starts and in its summary), and
# a true miss last.
UNFILLED_PRECEDENCE: tuple[Status, ...] = (
    Status.REJECTED,
    Status.BUDGET_EXHAUSTED,
    Status.BLOCKED,
    Status.TOO_LARGE,
    Status.TIMEOUT,
    Status.RATE_LIMITED,
    Status.LLM_FAILED,
    Status.PROVIDER_ERROR,
    Status.LOW_CONFIDENCE,
    Status.SKIPPED_NO_KEY,
    Status.NOT_FOUND,
)


@dataclass(frozen=True)
class Outcome:
    """What one provider said about one row when it filled nothing: its status and its reason, in words."""

    source: str
    status: str
    reason: str = ""

    @property
    def dead_address(self) -> bool:
        """The row's own address leads nowhere (no such host, HTTP 404/410): only a corrected URL helps."""
        return self.status == Status.NOT_FOUND and any(marker in self.reason for marker in _DEAD_ADDRESS)


def _rank(outcome: Outcome) -> int:
    if outcome.dead_address:
        return -1
    status = Status(outcome.status) if outcome.status in Status._value2member_map_ else Status.PROVIDER_ERROR
    return UNFILLED_PRECEDENCE.index(status) if status in UNFILLED_PRECEDENCE else len(UNFILLED_PRECEDENCE)


def most_useful(outcomes: Iterable[Outcome]) -> Outcome | None:
    """The outcome a user should see for a field no provider filled; ties go to the earlier provider."""
    ranked = sorted(enumerate(outcomes), key=lambda item: (_rank(item[1]), item[0]))
    return ranked[0][1] if ranked else None


def worst_unfilled(statuses: set[str]) -> Status:
    """Pick the status a user should see among field statuses (a row with nothing filled)."""
    for status in UNFILLED_PRECEDENCE:
        if status in statuses:
            return status
    return Status.NOT_FOUND


def row_status(field_statuses: list[str]) -> Status:
    """Summarise a row: filled when every wanted field is, partial when some are."""
    wanted = [s for s in field_statuses if s != Status.NOT_WANTED]
    if not wanted:
        return Status.NOT_WANTED
    filled = sum(1 for s in wanted if s == Status.FILLED)
    if filled == len(wanted):
        return Status.FILLED
    if filled:
        return Status.PARTIAL
    return worst_unfilled(set(wanted))


def row_status_of(provenance: Iterable[Mapping[str, object]]) -> Status:
    """A row's status from its fields' provenance: filled or partial, else the most useful reason among its
    empty fields (a dead address before a missing key, as for a field)."""
    entries = list(provenance)
    status = row_status([str(e.get("status")) for e in entries])
    if status in (Status.FILLED, Status.PARTIAL, Status.NOT_WANTED):
        return status
    best = most_useful(
        Outcome(str(e.get("source") or ""), str(e.get("status")), str(e.get("reason") or "")) for e in entries
    )
    return Status(best.status) if best is not None else status
