"""Cached configuration follows every change: triggers bump the generation, counters do not."""

from __future__ import annotations

from sqlalchemy import inspect, text, update
from sqlalchemy.orm import Session

from opsdesk import config_cache
from opsdesk.auth.actor import Actor
from opsdesk.auth.models import Group
from opsdesk.automation import rules as triggers
from opsdesk.automation.models import AutomationRule
from opsdesk.triage.service import routing

ADMIN = Actor.system("test", via="cli")


def _generation(session: Session) -> int:
    return int(session.execute(text("SELECT value FROM config_generation WHERE id = 1")).scalar_one())


def test_every_configuration_table_has_its_triggers(db: Session) -> None:
    connection = db.connection()
    if connection.dialect.name == "sqlite":
        rows = connection.exec_driver_sql("SELECT tbl_name FROM sqlite_master WHERE type = 'trigger'")
    else:
        rows = connection.exec_driver_sql(
            "SELECT event_object_table FROM information_schema.triggers "
            "WHERE trigger_name LIKE 'config_generation_%%'"
        )
    with_triggers = {row[0] for row in rows}
    assert set(inspect(connection).get_table_names()) >= set(config_cache.CONFIGURATION_TABLES)
    assert set(config_cache.CONFIGURATION_TABLES) <= with_triggers


def test_a_change_is_seen_in_its_transaction_and_a_rolled_back_one_is_forgotten(db: Session) -> None:
    group = Group(name="Billing desk")
    db.add(group)
    db.flush()
    assert routing.active_rules(db) == []
    before = _generation(db)
    rule = {
        "name": "Refunds",
        "conditions": [{"field": "subject", "op": "contains", "value": "refund"}],
        "actions": {"group_id": group.id},
    }
    with db.begin_nested() as savepoint:
        routing.save_rule_set(db, ADMIN, [rule])
        assert _generation(db) != before
        assert [found.name for found in routing.active_rules(db)] == ["Refunds"]
        savepoint.rollback()
    assert _generation(db) == before
    assert routing.active_rules(db) == []
    routing.save_rule_set(db, ADMIN, [rule])
    assert [found.name for found in routing.active_rules(db)] == ["Refunds"]


def test_unflushed_configuration_counts(db: Session) -> None:
    assert triggers.active_triggers(db) == ()
    db.add(
        AutomationRule(
            name="Tag urgent",
            kind="trigger",
            events=["created"],
            conditions={},
            actions=[],
            position=0,
            is_active=True,
        )
    )
    assert [found.name for found in triggers.active_triggers(db)] == ["Tag urgent"]


def test_counters_on_configuration_rows_do_not_change_the_generation(db: Session) -> None:
    rule = AutomationRule(
        name="Count me",
        kind="trigger",
        events=["created"],
        conditions={},
        actions=[],
        position=0,
        is_active=True,
    )
    db.add(rule)
    db.flush()
    before = _generation(db)
    db.execute(update(AutomationRule).where(AutomationRule.id == rule.id).values(fire_count=5))
    assert _generation(db) == before
    db.execute(update(AutomationRule).where(AutomationRule.id == rule.id).values(is_active=False))
    assert _generation(db) != before
    assert triggers.active_triggers(db) == ()
