"""Refund rules, invoice arithmetic, dunning and reminder schedules, failure wording, CSV reading,
webhook signatures and reconciliation matching: pure logic, exact values and properties."""

from __future__ import annotations

import calendar
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from opsdesk.billing import dunning_schedule, invoice_math, invoice_reminders, refund_rules, webhook_signature
from opsdesk.billing.enums import DiscrepancyKind
from opsdesk.billing.failure_reasons import DEFAULT_REASON, explain_failure
from opsdesk.billing.periods import add_interval, next_period_end
from opsdesk.billing.reconciliation_compare import LedgerCharge, ProviderCharge, compare_charges
from opsdesk.billing.stripe_csv import CsvFormatError, read_export, to_minor

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_inquiries_stay_refundable_chargebacks_do_not() -> None:
    common = {"amount": 100, "captured": 1_000, "refunded": 0, "reserved": 0, "payment_succeeded": True}
    assert refund_rules.check_refund(**common, dispute_statuses=["warning_needs_response"]) is None
    refusal = refund_rules.check_refund(**common, dispute_statuses=["needs_response"])
    assert refusal is not None
    assert "chargeback" in refusal.message
    assert refund_rules.check_refund(**common, dispute_statuses=["lost"]) is not None
    assert refund_rules.check_refund(**common, dispute_statuses=["won"]) is None
    assert refund_rules.may_dispute(1_000, 1_000) is False
    assert refund_rules.may_dispute(1_000, 999) is True


OPERATIONS = st.lists(
    st.tuples(
        st.sampled_from(["refund", "approve", "reject"]), st.integers(-50, 1_500), st.integers(0, 2_000)
    ),
    max_size=40,
)


@given(captured=st.integers(0, 1_000), limit=st.integers(0, 800), operations=OPERATIONS)
def test_no_sequence_of_operations_refunds_more_than_was_captured(
    captured: int, limit: int, operations: list[tuple[str, int, int]]
) -> None:
    """A ledger driven only through the rules: refunded + reserved never passes captured."""
    refunded = reserved = 0
    queue: list[int] = []
    for kind, amount, pick in operations:
        if kind == "refund":
            refusal = refund_rules.check_refund(
                amount=amount,
                captured=captured,
                refunded=refunded,
                reserved=reserved,
                payment_succeeded=True,
                dispute_statuses=[],
            )
            if refusal is not None:
                assert amount <= 0 or amount > captured - refunded - reserved
                continue
            if refund_rules.decide(amount, limit, may_approve=False) is refund_rules.RefundDecision.ISSUE:
                assert amount <= limit
                refunded += amount
            else:
                assert amount > limit
                reserved += amount
                queue.append(amount)
        elif queue:
            amount = queue.pop(pick % len(queue))
            reserved -= amount
            if kind == "approve":
                refunded += amount
        assert 0 <= refunded + reserved <= captured
        assert reserved == sum(queue)


@given(
    lines=st.lists(st.integers(-100_000, 100_000), max_size=12),
    tax=st.integers(0, 10_000),
    credit=st.integers(0, 200_000),
)
def test_every_invoice_balances(lines: list[int], tax: int, credit: int) -> None:
    money = invoice_math.totals(lines, tax=tax, credit_balance=credit)
    assert invoice_math.balances(
        lines,
        subtotal=money.subtotal,
        tax=money.tax,
        total=money.total,
        credit_applied=money.credit_applied,
        amount_paid=0,
        amount_due=money.amount_due,
    )
    assert money.amount_due >= 0
    assert credit + money.balance_change >= 0
    assert money.credit_applied <= max(credit, 0) or money.total < 0


def test_dunning_schedule_retries_then_unpaid() -> None:
    first = dunning_schedule.after_failed_attempt(1, T0)
    assert (first.next_status, first.retry_at, first.email_template) == (
        "past_due",
        T0 + timedelta(days=3),
        "payment_failed",
    )
    assert dunning_schedule.after_failed_attempt(3, T0).retry_at == T0 + timedelta(days=15)
    last = dunning_schedule.after_failed_attempt(4, T0)
    assert (last.next_status, last.retry_at) == ("unpaid", None)
    assert dunning_schedule.total_attempts() == 4


def test_reminders_are_sent_once_per_stage_latest_only() -> None:
    due = T0 + timedelta(days=30)
    assert invoice_reminders.due_reminder(due, [], T0) is None
    assert invoice_reminders.due_reminder(due, [], due - timedelta(days=7)) == "due-7d"
    assert invoice_reminders.due_reminder(due, ["due-7d"], due - timedelta(days=3)) is None
    assert invoice_reminders.due_reminder(due, ["due-7d"], due + timedelta(days=10)) == "due+7d"
    assert invoice_reminders.is_overdue_stage("due+7d")
    assert not invoice_reminders.is_overdue_stage("due-1d")


def test_failure_reasons_are_plain_words() -> None:
    assert "expired" in explain_failure("expired_card")
    assert "not enough money" in explain_failure("INSUFFICIENT_FUNDS")
    assert explain_failure(None) == DEFAULT_REASON == explain_failure("something_new")


def test_periods_follow_stripe_month_end_anchoring() -> None:
    assert add_interval(datetime(2026, 1, 31, tzinfo=UTC), "month") == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_interval(datetime(2028, 2, 29, tzinfo=UTC), "year") == datetime(2029, 2, 28, tzinfo=UTC)


def test_csv_amounts_and_formats() -> None:
    assert to_minor("1,234.50", "USD") == 123_450
    assert to_minor("1500", "JPY") == 1_500
    assert to_minor("-2.5", "EUR") == -250
    with pytest.raises(CsvFormatError):
        to_minor("1.005", "USD")
    charges = list(
        read_export(
            [
                "id,Created (UTC),Amount,Amount Refunded,Currency,Status,Customer ID,Invoice ID\n",
                "ch_1,2026-03-01 10:00,20.00,5.00,usd,Paid,cus_1,in_1\n",
                "ch_2,2026-03-01 10:00,20.00,0,usd,Failed,cus_1,in_1\n",
            ]
        )
    )
    assert [(c.external_id, c.amount_minor, c.refunded_minor, c.currency) for c in charges] == [
        ("ch_1", 2_000, 500, "USD")
    ]
    balance = list(
        read_export(
            [
                "id,Type,Source,Amount,Fee,Net,Currency,charge_id\n",
                "txn_1,charge,ch_9,100.00,3.20,96.80,eur,\n",
                "txn_2,refund,re_1,-40.00,0,-40.00,eur,ch_9\n",
            ]
        )
    )
    assert [(c.external_id, c.amount_minor, c.refunded_minor) for c in balance] == [("ch_9", 10_000, 4_000)]
    with pytest.raises(CsvFormatError):
        list(read_export(["what,is,this\n", "1,2,3\n"]))


def test_signatures_match_stripes_scheme_and_tolerance() -> None:
    payload, secret, now = b'{"id":"evt_1"}', "whsec_test", 1_800_000_000
    expected = hmac.new(secret.encode(), f"{now}.".encode() + payload, hashlib.sha256).hexdigest()
    header = webhook_signature.sign(payload, secret, now)
    assert header == f"t={now},v1={expected}"
    webhook_signature.verify(payload, header, secret, now + 299)
    webhook_signature.verify(payload, f"t={now},v1=deadbeef,v1={expected}", secret, now)
    for bad_header, at in (
        (header, now + 301),
        (header.replace(expected, "0" * 64), now),
        ("v1=" + expected, now),
        (None, now),
    ):
        with pytest.raises(webhook_signature.SignatureError):
            webhook_signature.verify(payload, bad_header, secret, at)
    with pytest.raises(webhook_signature.SignatureError):
        webhook_signature.verify(payload + b" ", header, secret, now)


def test_reconciliation_finds_each_kind_of_difference() -> None:
    ledger = [
        LedgerCharge("ch_ok", 1_000, "USD", 0, 1, 1, 1),
        LedgerCharge("ch_amount", 1_000, "USD", 0, 2, 1, 1),
        LedgerCharge("ch_currency", 1_000, "USD", 0, 3, 1, 1),
        LedgerCharge("ch_refund", 1_000, "USD", 0, 4, 1, 1),
        LedgerCharge("ch_only_here", 1_000, "USD", 0, 5, 1, 1),
        LedgerCharge("ch_ok", 1_000, "USD", 0, 6, 1, 1),
    ]
    remote = [
        ProviderCharge("ch_ok", 1_000, "USD", 0, "cus_1", "in_1"),
        ProviderCharge("ch_amount", 1_200, "USD", 0),
        ProviderCharge("ch_currency", 1_000, "EUR", 0),
        ProviderCharge("ch_refund", 1_000, "USD", 300),
        ProviderCharge("ch_only_there", 700, "USD", 0),
        ProviderCharge("ch_twice", 1_000, "USD", 0, "cus_1", "in_1"),
    ]
    found = {(item.kind, item.external_id) for item in compare_charges(ledger, remote)}
    assert found == {
        (DiscrepancyKind.DUPLICATE_CHARGE, "ch_ok"),
        (DiscrepancyKind.AMOUNT_MISMATCH, "ch_amount"),
        (DiscrepancyKind.CURRENCY_MISMATCH, "ch_currency"),
        (DiscrepancyKind.REFUND_NOT_REFLECTED, "ch_refund"),
        (DiscrepancyKind.MISSING_AT_PROVIDER, "ch_only_here"),
        (DiscrepancyKind.MISSING_IN_LEDGER, "ch_only_there"),
        (DiscrepancyKind.MISSING_IN_LEDGER, "ch_twice"),
        (DiscrepancyKind.DUPLICATE_CHARGE, "ch_twice"),
    }


@given(
    anchor=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC)
    ),
    interval=st.sampled_from(["month", "year"]),
    renewals=st.integers(min_value=1, max_value=30),
)
def test_periods_count_from_the_anchor_and_keep_its_day(
    anchor: datetime, interval: str, renewals: int
) -> None:
    step = 12 if interval == "year" else 1
    start = anchor
    for number in range(1, renewals + 1):
        end = next_period_end(anchor, start, interval)
        assert end == add_interval(anchor, interval, number)
        month_days = calendar.monthrange(end.year, end.month)[1]
        assert end.day == min(anchor.day, month_days)
        assert (end.year - anchor.year) * 12 + end.month - anchor.month == number * step
        start = end


def test_a_month_end_anchor_comes_back_after_february() -> None:
    anchor = datetime(2027, 1, 31, 9, tzinfo=UTC)
    february = next_period_end(anchor, anchor, "month")
    assert february == datetime(2027, 2, 28, 9, tzinfo=UTC)
    assert next_period_end(anchor, february, "month") == datetime(2027, 3, 31, 9, tzinfo=UTC)
