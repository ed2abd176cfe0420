"""Spending: a run's budget, and what a paid stage needs besides the cache (the ledger and the budget)."""

from __future__ import annotations

from dataclasses import dataclass, field

from glaze_pipeline.core.storage.ledger import Ledger


@dataclass
class Budget:
    """Spending limits of one run: reserve a call's price before sending it, settle what it really cost.

    Reservations make the limit hold with calls in flight: the total of paid and
    reserved never exceeds `max_run_usd`, nor a row's `max_row_usd`.
    """

    max_run_usd: float
    max_row_usd: float
    spent_usd: float = 0.0
    spent_by_row: dict[str, float] = field(default_factory=dict)
    reserved_usd: float = 0.0
    refused: int = 0

    def reserve(self, row_key: str, price: float) -> str | None:
        """None when the call may go; otherwise the reason it may not."""
        eps = 1e-9
        if self.spent_usd + self.reserved_usd + price > self.max_run_usd + eps:
            self.refused += 1
            return f"run budget ${self.max_run_usd:g} reached (spent ${self.spent_usd:.4f})"
        if self.spent_by_row.get(row_key, 0.0) + price > self.max_row_usd + eps:
            self.refused += 1
            return f"row budget ${self.max_row_usd:g} reached"
        self.reserved_usd += price
        return None

    def fits_once_settled(self, row_key: str, price: float) -> bool:
        """Would this call fit if every reservation in flight were released at no cost? Then it is worth waiting."""
        eps = 1e-9
        row_fits = self.spent_by_row.get(row_key, 0.0) + price <= self.max_row_usd + eps
        return row_fits and self.spent_usd + price <= self.max_run_usd + eps

    def settle(self, row_key: str, reserved: float, cost: float) -> None:
        self.reserved_usd = max(0.0, self.reserved_usd - reserved)
        self.spent_usd += cost
        if cost:
            self.spent_by_row[row_key] = self.spent_by_row.get(row_key, 0.0) + cost


@dataclass
class Spending:
    """What a paid stage needs besides the cache: the ledger it records to and reads from, and the run's budget."""

    ledger: Ledger
    budget: Budget
    ttl_s: int = 7 * 86_400  # ledger answers are reused as long as the cache would keep them
    negative_ttl_s: int = 86_400
    lease_s: float = 15.0  # a paid-request claim outlives a killed holder this long (GLAZE_LEASE_S)
    claim_wait_s: float = 300.0  # how long a stage waits, without progress, for another holder's answers
