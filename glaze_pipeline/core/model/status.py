"""The one status vocabulary: every (row, field) ends with exactly one of these."""

from __future__ import annotations

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


# When several providers tried a field and none filled it, the field reports the
# most actionable reason: a user can fix a block or a budget, not a true miss.
UNFILLED_PRECEDENCE: tuple[Status, ...] = (
    Status.REJECTED,
    Status.BUDGET_EXHAUSTED,
    Status.SKIPPED_NO_KEY,
    Status.BLOCKED,
    Status.TOO_LARGE,
    Status.TIMEOUT,
    Status.RATE_LIMITED,
    Status.LLM_FAILED,
    Status.PROVIDER_ERROR,
    Status.LOW_CONFIDENCE,
    Status.NOT_FOUND,
)


def worst_unfilled(statuses: set[str]) -> Status:
    """Pick the status a user should see for a field no provider filled."""
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
