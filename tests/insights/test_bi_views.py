"""The BI views agree with the metric layer, ticket by ticket."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from opsdesk.insights.service.series import MetricQuery, metric_series
from tests.insights.scenario import MONDAY, build
from tests.support.factories import make_user, staff_actor


def test_bi_tickets_match_the_metric_definitions(db: Session) -> None:
    scenario = build(db)
    db.flush()
    ids = [scenario.t1.id, scenario.t2.id, scenario.t3.id, scenario.t4.id, scenario.t5.id]
    rows = db.execute(
        text(
            "SELECT ticket_id, first_reply_seconds, full_resolution_seconds, is_first_contact_resolution, "
            "is_solved_without_reply, is_reopened, is_good_rating, vendor, account_tier "
            "FROM bi_tickets WHERE ticket_id IN (:a, :b, :c, :d, :e) ORDER BY ticket_id"
        ),
        dict(zip("abcde", ids, strict=True)),
    ).all()
    by_id = {row[0]: row[1:] for row in rows}
    assert float(by_id[scenario.t1.id][0]) == pytest.approx(3600, abs=0.01)
    assert [by_id[i][2] for i in ids] == [1, 0, None, 0, None]  # FCR: t3 (no reply) and t5 apart
    assert [by_id[i][3] for i in ids] == [0, 0, 1, 0, None]
    assert [by_id[i][4] for i in ids] == [0, 0, 0, 1, None]
    assert by_id[scenario.t2.id][6] == "Acme BPO"
    assert by_id[scenario.t1.id][7] == "enterprise"
    lead = staff_actor(make_user(db, role="lead"))
    week = MetricQuery("first_reply_time", MONDAY.replace(hour=0), MONDAY.replace(hour=0) + timedelta(days=7))
    (point,) = metric_series(db, lead, week).points
    replied = [float(by_id[i][0]) for i in ids if by_id[i][0] is not None]
    assert point.count == len(replied)
    assert point.mean == pytest.approx(sum(replied) / len(replied), abs=0.01)
    changes = (
        db.execute(
            text("SELECT new_status FROM bi_status_changes WHERE ticket_id = :t ORDER BY change_id"),
            {"t": scenario.t4.id},
        )
        .scalars()
        .all()
    )
    assert changes == ["open", "solved", "open", "solved"]
