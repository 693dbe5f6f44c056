"""How an invoice's totals follow from its lines: pure arithmetic in minor units.

``subtotal = Σ lines``; ``total = subtotal + tax``; credit from the customer's balance covers as
much of a positive total as it can; ``amount_due = total - credit_applied - amount_paid``. A
negative total (a downgrade's credit larger than the charges) is not owed back in cash: it
becomes customer credit, and the invoice's total is then zero after crediting.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InvoiceTotals:
    subtotal: int
    tax: int
    total: int
    credit_applied: int
    amount_due: int
    credit_created: int

    @property
    def balance_change(self) -> int:
        """How the customer's credit balance moves: down by what was applied, or up by the
        credit a negative total creates (``credit_applied`` is then that negative total)."""
        return -self.credit_applied


def totals(line_amounts: Iterable[int], *, tax: int, credit_balance: int) -> InvoiceTotals:
    subtotal = sum(line_amounts)
    total = subtotal + tax
    if total < 0:
        return InvoiceTotals(subtotal, tax, total, total, 0, -total)
    applied = min(max(credit_balance, 0), total)
    return InvoiceTotals(subtotal, tax, total, applied, total - applied, 0)


def balances(
    line_amounts: Iterable[int],
    *,
    subtotal: int,
    tax: int,
    total: int,
    credit_applied: int,
    amount_paid: int,
    amount_due: int,
) -> bool:
    """Whether stored totals are consistent with the lines (the invariant every invoice keeps)."""
    return (
        subtotal == sum(line_amounts)
        and total == subtotal + tax
        and amount_due == total - credit_applied - amount_paid
        and amount_due >= 0
    )
