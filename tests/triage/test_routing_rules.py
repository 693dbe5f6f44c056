"""Routing rules (validation and first-match evaluation) and the assignment policy."""

from __future__ import annotations

from opsdesk.triage.assignment_policy import Candidate, Need, choose_agent
from opsdesk.triage.routing_rules import first_match, rule_from_mapping, validate_rule_set

FACTS = {
    "subject": "Refund please",
    "category": "billing/refund",
    "predicted_category": "billing/refund",
    "account_tier": "enterprise",
    "account_is_hot": True,
    "channel": "email",
    "language": "de",
    "tags": ["vip"],
    "requester_email": "ana@acme.example",
    "account_mrr_amount_minor": 250_000,
    "custom_fields.region": "emea",
}


def _rule(name: str, conditions: list[dict[str, object]], **actions: object) -> dict[str, object]:
    return {"name": name, "conditions": conditions, "actions": actions or {"group_id": 1}}


def test_first_match_wins_and_explains() -> None:
    rules = [
        rule_from_mapping(_rule("Chat", [{"field": "channel", "op": "equals", "value": "chat"}]), 1),
        rule_from_mapping(
            _rule(
                "Enterprise refunds",
                [
                    {"field": "category", "op": "under", "value": ["billing"]},
                    {"field": "account_tier", "op": "equals", "value": "enterprise"},
                    {"field": "account_mrr_amount_minor", "op": "at_least", "value": 100_000},
                    {"field": "tags", "op": "includes", "value": "VIP"},
                    {"field": "custom_fields.region", "op": "equals", "value": "EMEA"},
                ],
                group_id=2,
                priority="high",
            ),
            2,
        ),
        rule_from_mapping(_rule("Everything else", []), 3),
    ]
    evaluation = first_match(rules, FACTS)
    assert evaluation.rule is not None
    assert evaluation.rule.rule_id == 2
    assert [trace.matched for trace in evaluation.trace] == [False, True]
    assert "channel equals 'chat' (no: channel is 'email')" in evaluation.trace[0].reasons
    assert evaluation.explanation.startswith(
        "rule 'Enterprise refunds' matched: category under ['billing'] (yes"
    )


def test_any_match_and_regex_and_no_match() -> None:
    rule = rule_from_mapping(
        {
            "name": "Germans or refunds",
            "match": "any",
            "conditions": [
                {"field": "language", "op": "equals", "value": "fr"},
                {"field": "subject", "op": "matches", "value": r"^refund"},
            ],
            "actions": {"add_tags": ["refund"]},
        }
    )
    assert first_match([rule], FACTS).rule is rule
    assert first_match([rule], {**FACTS, "subject": "Hello"}).rule is None
    assert first_match([rule], {**FACTS, "subject": "Hello"}).explanation == "no routing rule matched"


def test_validation_names_every_problem_with_its_place() -> None:
    rules = [
        rule_from_mapping(_rule("Typo", [{"field": "catgory", "op": "equals", "value": "billing"}])),
        rule_from_mapping(_rule("Wrong op", [{"field": "account_is_hot", "op": "contains", "value": "x"}])),
        rule_from_mapping(
            _rule(
                "Wrong type", [{"field": "account_mrr_amount_minor", "op": "greater_than", "value": "lots"}]
            )
        ),
        rule_from_mapping(_rule("Bad choice", [{"field": "channel", "op": "equals", "value": "fax"}])),
        rule_from_mapping(_rule("Bad regex", [{"field": "subject", "op": "matches", "value": "("}])),
        rule_from_mapping(
            _rule("Unknown category", [{"field": "category", "op": "equals", "value": "nope"}])
        ),
        rule_from_mapping(
            _rule(
                "Bad action",
                [{"field": "channel", "op": "equals", "value": "chat"}],
                group_id=99,
                priority="asap",
                colour="red",
            )
        ),
    ]
    problems = validate_rule_set(rules, categories=frozenset({"billing"}), group_ids=frozenset({1}))
    found = {(".".join(map(str, problem.location)), problem.code) for problem in problems}
    assert found == {
        ("rules.0.conditions.0.field", "unknown_field"),
        ("rules.1.conditions.0.op", "wrong_type"),
        ("rules.2.conditions.0.value", "wrong_type"),
        ("rules.3.conditions.0.value", "wrong_type"),
        ("rules.4.conditions.0.value", "wrong_type"),
        ("rules.5.conditions.0.value", "unknown_category"),
        ("rules.6.actions.colour", "unknown_field"),
        ("rules.6.actions.group_id", "invalid"),
        ("rules.6.actions.priority", "wrong_type"),
    }


def test_unreachable_rules_are_refused() -> None:
    chat = {"field": "channel", "op": "equals", "value": "chat"}
    german = {"field": "language", "op": "equals", "value": "de"}
    rules = [
        rule_from_mapping(_rule("Chat", [chat])),
        rule_from_mapping(_rule("German chat", [chat, german])),
        rule_from_mapping(
            _rule("Impossible", [german, {"field": "language", "op": "equals", "value": "fr"}])
        ),
        rule_from_mapping(_rule("Catch-all", [])),
        rule_from_mapping(_rule("After catch-all", [german])),
    ]
    problems = validate_rule_set(rules)
    assert [(problem.location, problem.code) for problem in problems] == [
        (("rules", 1), "unreachable"),
        (("rules", 2), "unreachable"),
        (("rules", 4), "unreachable"),
    ]
    assert "rule 1 ('Chat') matches every ticket it would" in problems[0].message
    assert "cannot equal both 'de' and 'fr'" in problems[1].message


def _agent(user_id: int, **overrides: object) -> Candidate:
    values: dict[str, object] = {
        "user_id": user_id,
        "name": f"Agent {user_id}",
        "open_count": 0,
        "capacity": 5,
        "skills": frozenset(),
        "languages": frozenset({"en"}),
        "availability": "online",
        "seniority": 1,
    }
    values.update(overrides)
    return Candidate(**values)  # type: ignore[arg-type]


def test_least_loaded_respects_capacity_availability_and_skills() -> None:
    agents = [
        _agent(1, open_count=1, capacity=2),
        _agent(2, open_count=2, capacity=10),
        _agent(3, open_count=0, availability="away"),
        _agent(4, open_count=5, capacity=5),
        _agent(5, open_count=0, skills=frozenset({"billing_certified"})),
    ]
    assert choose_agent("least_loaded", agents, Need()).user_id == 5
    assert choose_agent("least_loaded", agents[:4], Need()).user_id == 2  # 2/10 beats 1/2
    certified = choose_agent(
        "least_loaded", agents[:4], Need(required_skills=frozenset({"billing_certified"}))
    )
    assert certified.user_id is None
    assert certified.reason == "no eligible agent (1 at capacity, 1 away, 2 missing skills)"


def test_round_robin_takes_turns_and_prefers_language_and_seniority() -> None:
    agents = [_agent(1), _agent(2), _agent(3)]
    turns = []
    last = None
    for _ in range(4):
        choice = choose_agent("round_robin", agents, Need(), last_assigned_user_id=last)
        turns.append(choice.user_id)
        last = choice.user_id
    assert turns == [1, 2, 3, 1]
    speakers = [_agent(1), _agent(2, languages=frozenset({"de", "en"}))]
    german = choose_agent("round_robin", speakers, Need(language="de"), last_assigned_user_id=2)
    assert german.user_id == 2
    assert "speaks de" in german.reason
    seniors = [_agent(1), _agent(2, seniority=3)]
    hot = choose_agent("least_loaded", seniors, Need(needs_senior=True, senior_level=2))
    assert hot.user_id == 2
    alone = choose_agent("least_loaded", [_agent(1)], Need(needs_senior=True))
    assert alone.user_id == 1
    assert "no senior agent available" in alone.reason
    assert choose_agent("manual", agents, Need()).user_id is None
