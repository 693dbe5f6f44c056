"""Whole tickets as rows: the customer's message, routing, agent replies and notes, follow-ups,
solves, reopens, holds, satisfaction ratings and closing, up to "now".

Each ticket is played forward in time from its arrival and stops at the end of the span, so a
ticket that arrived an hour ago is still new and one from last month is closed. The metric
columns are set from the same events that become messages and audit rows, so they agree:
``first_reply_at`` is the first public staff message, ``staff_public_reply_count`` counts them,
``reopened_count`` counts solved -> open, ``first_solved_at <= solved_at``, tickets solved for
four days are closed, ratings only exist on solved or closed tickets, and ``status`` is the
last status the audit trail changed it to. The status rules are those of
``opsdesk.tickets.service.lifecycle``. Pure logic: rows out, no I/O.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from opsdesk.demo.arrivals import Burst
from opsdesk.demo.texts import (
    AGENT_CLOSERS,
    CUSTOMER_CLOSERS,
    INCIDENT_DETAILS,
    INCIDENT_REPLIES,
    INCIDENT_SUBJECTS,
    OPENERS,
    PRODUCT,
    REOPEN_FOLLOW_UPS,
    SATISFACTION_COMMENTS,
    SCENARIOS,
    fill,
)

CLOSE_AFTER_SECONDS = 4 * 86_400
# Tickets about an outage keep coming for half an hour after it ends.
BURST_TAIL_SECONDS = 1_800
CATEGORY_GROUP = {
    "billing": "Billing",
    "account": "Frontline",
    "technical": "Technical Support",
    "bug": "Technical Support",
    "how_to": "Frontline",
    "feature_request": "Frontline",
    "sales_renewal": "Renewals",
}
FIRST_REPLY_MEDIAN = {"urgent": 1_200.0, "high": 3_600.0, "normal": 9_000.0, "low": 18_000.0}
TIER_SPEED = {"enterprise": 0.5, "business": 0.75, "self_serve": 1.0, "consumer": 1.3}
CHANNELS = ("email",) * 9 + ("web",) * 5 + ("chat",) * 3 + ("phone", "api")
PRIORITIES = ("low",) * 3 + ("normal",) * 12 + ("high",) * 4 + ("urgent",)
PRIORITIES_RAISED = ("normal",) * 8 + ("high",) * 8 + ("urgent",) * 4
SATISFACTION = (5,) * 11 + (4,) * 4 + (3,) * 2 + (2,) + (1,) * 2
SATISFACTION_UNHAPPY = (5,) * 4 + (4,) * 4 + (3,) * 4 + (2,) * 3 + (1,) * 5
_MESSAGE_JSON: dict[tuple[object, object], str] = {
    (author, public): f'{{"author":"{author}","public":{"true" if public else "false"}}}'
    for author in ("customer", "staff")
    for public in (True, False)
}
STATUS_JSON = {
    status: json.dumps(status) for status in ("new", "open", "pending", "on_hold", "solved", "closed")
}

TICKET_COLUMNS = (
    "id",
    "subject",
    "status",
    "custom_status_id",
    "priority",
    "type",
    "category",
    "channel",
    "language",
    "requester_id",
    "account_id",
    "assignee_id",
    "group_id",
    "custom_fields",
    "reply_token",
    "created_at",
    "updated_at",
    "first_reply_at",
    "first_solved_at",
    "solved_at",
    "closed_at",
    "last_customer_message_at",
    "last_staff_reply_at",
    "status_changed_at",
    "reopened_count",
    "staff_public_reply_count",
    "customer_message_count",
    "handle_seconds",
    "satisfaction_score",
    "satisfaction_comment",
    "satisfaction_at",
)
MESSAGE_COLUMNS = (
    "id",
    "ticket_id",
    "author_kind",
    "author_user_id",
    "author_person_id",
    "is_public",
    "body_text",
    "channel",
    "created_at",
)
TAG_COLUMNS = ("ticket_id", "tag")
AUDIT_COLUMNS = (
    "ticket_id",
    "entity_type",
    "entity_id",
    "action",
    "field",
    "old_value",
    "new_value",
    "actor_kind",
    "actor_id",
    "actor_name",
    "via",
    "created_at",
)


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    name: str
    first_name: str


@dataclass(frozen=True, slots=True)
class Requester:
    id: int
    name: str
    first_name: str
    account_id: int
    tier: str
    language: str
    # The primary email, as the "created" audit event names the requester.
    email: str | None = None


@dataclass(frozen=True, slots=True)
class Variant:
    """One filled-in scenario: everything of a ticket's text except the names."""

    category: str
    type: str
    subject: str
    body_prefix: str
    reply_middle: str
    follow_up: str | None
    note: str | None
    tags: tuple[str, ...]
    custom_fields: str
    may_hold: bool


@dataclass(slots=True)
class Rows:
    tickets: list[tuple[object, ...]] = field(default_factory=list)
    messages: list[tuple[object, ...]] = field(default_factory=list)
    tags: list[tuple[object, ...]] = field(default_factory=list)
    # Audit rows in the order the batch writes them: each ticket's "created" event, then the
    # changes of status, group, assignee and rating, then one event per message after the first.
    created_audit: list[tuple[object, ...]] = field(default_factory=list)
    audit: list[tuple[object, ...]] = field(default_factory=list)
    message_audit: list[tuple[object, ...]] = field(default_factory=list)
    # (ticket id, subject, message texts one per line): the keyword index's rows, when asked for.
    documents: list[tuple[object, ...]] = field(default_factory=list)


def _variant(generator: random.Random, scenario_index: int) -> Variant:
    scenario = SCENARIOS[scenario_index]
    extra = {name: generator.choice(values) for name, values in (("plan", ("Starter", "Pro", "Business")),)}
    detail = fill(generator.choice(scenario.details), generator, extra)
    body_prefix = f"{generator.choice(OPENERS)}\n\n{detail}\n\n{generator.choice(CUSTOMER_CLOSERS)}\n"
    reply = fill(generator.choice(scenario.replies), generator, extra)
    reply_middle = f",\n\n{reply}\n\n{generator.choice(AGENT_CLOSERS)}\n"
    follow_up = fill(generator.choice(scenario.follow_ups), generator, extra) if scenario.follow_ups else None
    note = fill(generator.choice(scenario.notes), generator, extra) if scenario.notes else None
    tags = tuple(sorted(set(generator.sample(scenario.tags, k=generator.randint(1, len(scenario.tags))))))
    custom = json.dumps({"product_area": scenario.area}) if scenario.area else "{}"
    return Variant(
        scenario.category,
        scenario.type,
        fill(generator.choice(scenario.subjects), generator, extra),
        body_prefix,
        reply_middle,
        follow_up,
        note,
        tags,
        custom,
        scenario.on_hold_likely,
    )


def build_variants(generator: random.Random, count: int = 4_000) -> list[Variant]:
    weights = [scenario.weight for scenario in SCENARIOS]
    chosen = generator.choices(range(len(SCENARIOS)), weights=weights, k=count)
    return [_variant(generator, index) for index in chosen]


def _incident_variants(
    generator: random.Random, burst: Burst, formats: Callable[[int], str]
) -> list[Variant]:
    start_text, end_text = formats(burst.start)[11:16], formats(burst.end)[11:16]
    variants = []
    for subject in INCIDENT_SUBJECTS:
        detail = fill(generator.choice(INCIDENT_DETAILS), generator)
        reply = INCIDENT_REPLIES[0].format(start=start_text, end=end_text)
        variants.append(
            Variant(
                "technical",
                "incident",
                subject,
                f"{generator.choice(OPENERS)}\n\n{detail}\n\n{generator.choice(CUSTOMER_CLOSERS)}\n",
                f",\n\n{reply}\n\n{generator.choice(AGENT_CLOSERS)}\n",
                "Thanks, it works again.",
                "Part of the outage; linked to the incident.",
                ("outage",),
                json.dumps({"product_area": "Dashboards"}),
                False,
            )
        )
    return variants


class TicketPlayer:
    """Plays tickets forward from their arrival to ``now`` and collects their rows."""

    def __init__(
        self,
        generator: random.Random,
        *,
        now: int,
        instant: Callable[[int], str],
        groups: dict[str, int],
        members: Mapping[str, Sequence[Agent]],
        system_name: str,
        waiting_status_id: int,
        bursts: Sequence[Burst],
    ) -> None:
        self.random = generator
        self.now = now
        self.instant = instant
        self.groups = groups
        self.members = members
        self.system_name = system_name
        self.waiting_status_id = waiting_status_id
        self.bursts = list(bursts)
        self.variants = build_variants(generator)
        self._tags_json: dict[tuple[str, ...], str] = {}
        self._json_cache: dict[str | None, str] = {}
        self.incident_variants = {
            burst.start: _incident_variants(generator, burst, instant) for burst in self.bursts
        }

    def _json(self, value: str | None) -> str:
        encoded = self._json_cache.get(value)
        if encoded is None:
            encoded = json.dumps(value, ensure_ascii=False)
            if len(self._json_cache) < 100_000:
                self._json_cache[value] = encoded
        return encoded

    def burst_at(self, moment: int) -> Burst | None:
        for burst in self.bursts:
            if burst.start <= moment < burst.end + BURST_TAIL_SECONDS:
                return burst
        return None

    def play(self, ticket_id: int, message_id: int, created: int, requester: Requester, rows: Rows) -> int:
        """Append one ticket's rows; returns the next free message id."""
        rnd = self.random.random
        instant = self.instant
        now = self.now
        burst = self.burst_at(created)
        if burst is not None and rnd() < 0.6:
            variant = self.random.choice(self.incident_variants[burst.start])
            priority = "high"
        else:
            variant = self.variants[int(rnd() * len(self.variants))]
            raised = variant.type == "incident" or requester.tier == "enterprise"
            priority = (PRIORITIES_RAISED if raised else PRIORITIES)[int(rnd() * 20)]
        group_name = CATEGORY_GROUP[variant.category]
        if requester.tier == "enterprise" and rnd() < 0.5:
            group_name = "Enterprise"
        group_id = self.groups[group_name]
        team = self.members[group_name]
        agent = team[int(rnd() * len(team))]
        channel = "slack" if requester.tier == "enterprise" and rnd() < 0.2 else CHANNELS[int(rnd() * 19)]

        messages = rows.messages
        first_message_index = len(messages)
        audit = rows.audit
        status = "new"
        custom_status: int | None = None
        status_changed = created
        first_reply: int | None = None
        last_staff: int | None = None
        first_solved: int | None = None
        solved: int | None = None
        closed: int | None = None
        reopened = 0
        staff_replies = 0
        customer_messages = 1
        last_customer = created
        handle = 0
        updated = created

        def change(
            new_status: str, moment: int, kind: str, actor_id: int | None, name: str, via: str
        ) -> None:
            nonlocal status, status_changed, custom_status
            audit.append(
                (
                    ticket_id,
                    "ticket",
                    ticket_id,
                    "updated",
                    "status",
                    STATUS_JSON[status],
                    STATUS_JSON[new_status],
                    kind,
                    actor_id,
                    name,
                    via,
                    instant(moment),
                )
            )
            new_custom = self.waiting_status_id if new_status == "on_hold" else None
            if new_custom != custom_status:
                audit.append(
                    (
                        ticket_id,
                        "ticket",
                        ticket_id,
                        "updated",
                        "custom_status_id",
                        json.dumps(custom_status),
                        json.dumps(new_custom),
                        kind,
                        actor_id,
                        name,
                        via,
                        instant(moment),
                    )
                )
            status, status_changed, custom_status = new_status, moment, new_custom

        def customer_says(text: str, moment: int) -> None:
            nonlocal message_id, customer_messages, last_customer, reopened
            messages.append(
                (message_id, ticket_id, "customer", None, requester.id, True, text, channel, instant(moment))
            )
            message_id += 1
            customer_messages += 1
            last_customer = moment
            if status in ("solved", "pending"):
                if status == "solved":
                    reopened += 1
                change("open", moment, "customer", requester.id, requester.name, channel)

        def agent_replies(text: str, moment: int, new_status: str | None) -> None:
            nonlocal message_id, staff_replies, first_reply, last_staff, handle, first_solved, solved
            messages.append(
                (message_id, ticket_id, "staff", agent.id, None, True, text, "web", instant(moment))
            )
            message_id += 1
            staff_replies += 1
            if first_reply is None:
                first_reply = moment
            last_staff = moment
            handle += 180 + int(rnd() * 720)
            target = new_status or ("open" if status == "new" else None)
            if target is not None and target != status:
                change(target, moment, "user", agent.id, agent.name, "web")
                if target == "solved":
                    solved = moment
                    if first_solved is None:
                        first_solved = moment

        def agent_reply_text(middle: str) -> str:
            return f"Hi {requester.first_name}{middle}{agent.first_name}\n{PRODUCT} Support"

        messages.append(
            (
                message_id,
                ticket_id,
                "customer",
                None,
                requester.id,
                True,
                variant.body_prefix + requester.first_name,
                channel,
                instant(created),
            )
        )
        message_id += 1
        routed = created + 5 + int(rnd() * 55)
        assigned = False
        if routed < now:
            audit.append(
                (
                    ticket_id,
                    "ticket",
                    ticket_id,
                    "updated",
                    "group_id",
                    "null",
                    str(group_id),
                    "rule",
                    None,
                    "Default routing",
                    "rule",
                    instant(routed),
                )
            )

        speed = FIRST_REPLY_MEDIAN[priority] * TIER_SPEED[requester.tier]
        first_at = created + 120 + int(speed * self.random.lognormvariate(0.0, 0.9))
        if created % 86_400 < 6 * 3_600:  # the night shift is thin: early-UTC tickets wait longer
            first_at += int(rnd() * 4 * 3_600)
        if first_at < now or rnd() < 0.5:
            assign_at = min(routed + 1 + int(rnd() * 600), max(routed + 1, first_at - 30))
            if assign_at < now:
                audit.append(
                    (
                        ticket_id,
                        "ticket",
                        ticket_id,
                        "updated",
                        "assignee_id",
                        "null",
                        str(agent.id),
                        "rule",
                        None,
                        "Round-robin assignment",
                        "rule",
                        instant(assign_at),
                    )
                )
                assigned = True
        if variant.note is not None and rnd() < 0.25:
            note_at = created + 60 + int((first_at - created) * 0.6)
            if note_at < now and assigned:
                messages.append(
                    (
                        message_id,
                        ticket_id,
                        "staff",
                        agent.id,
                        None,
                        False,
                        variant.note,
                        "web",
                        instant(note_at),
                    )
                )
                message_id += 1
                handle += 60 + int(rnd() * 240)
                updated = note_at

        if first_at < now:
            exchanges = 0 if rnd() < 0.5 else (1 if rnd() < 0.7 else 2)
            if exchanges == 0:
                agent_replies(agent_reply_text(variant.reply_middle), first_at, "solved")
            else:
                agent_replies(
                    agent_reply_text(variant.reply_middle), first_at, "pending" if rnd() < 0.7 else "open"
                )
            moment = first_at
            while exchanges > 0:
                customer_at = moment + 120 + int(14_400 * self.random.lognormvariate(0.0, 1.0))
                if customer_at >= now:
                    break
                customer_says(
                    (variant.follow_up or "Any update?") + f"\n\n{requester.first_name}", customer_at
                )
                reply_at = customer_at + 120 + int(speed * self.random.lognormvariate(0.0, 0.8))
                if reply_at >= now:
                    moment = customer_at
                    break
                exchanges -= 1
                if exchanges == 0:
                    hold = variant.may_hold and rnd() < 0.4
                    text = (
                        "Thanks for your patience. I've passed this to our engineering team with all the "
                        "details and will update you as soon as they have a fix."
                        if hold
                        else "Thanks for confirming. Everything should be in order now; I'm marking this "
                        "as solved, but just reply if anything else comes up."
                    )
                    agent_replies(
                        agent_reply_text(f",\n\n{text}\n\n"), reply_at, "on_hold" if hold else "solved"
                    )
                else:
                    agent_replies(
                        agent_reply_text(
                            ",\n\nThanks, that helps. Could you tell me which browser and "
                            "workspace you see this in?\n\n"
                        ),
                        reply_at,
                        "pending",
                    )
                moment = reply_at
            if status == "on_hold":
                fixed_at = status_changed + 86_400 + int(rnd() * 5 * 86_400)
                if fixed_at < now:
                    agent_replies(
                        agent_reply_text(
                            ",\n\nGood news: the fix is live. Please let me know if you still "
                            "see the problem.\n\n"
                        ),
                        fixed_at,
                        "solved",
                    )
            if status == "solved" and solved is not None and rnd() < 0.08:
                reopen_at = solved + 3_600 + int(rnd() * 2 * 86_400)
                if reopen_at < now and reopen_at < solved + CLOSE_AFTER_SECONDS:
                    customer_says(
                        REOPEN_FOLLOW_UPS[int(rnd() * len(REOPEN_FOLLOW_UPS))]
                        + f"\n\n{requester.first_name}",
                        reopen_at,
                    )
                    again_at = reopen_at + 120 + int(speed * self.random.lognormvariate(0.0, 0.8))
                    if again_at < now:
                        agent_replies(
                            agent_reply_text(
                                ",\n\nSorry about that. I've looked again and fixed the remaining "
                                "problem on our side; it should stay fixed now.\n\n"
                            ),
                            again_at,
                            "solved",
                        )

        score: int | None = None
        comment: str | None = None
        rated: int | None = None
        if status == "solved" and solved is not None:
            if rnd() < 0.3:
                rate_at = solved + 600 + int(rnd() * 20 * 3_600)
                if rate_at < now and rate_at < solved + CLOSE_AFTER_SECONDS:
                    unhappy = reopened > 0 or (first_reply is not None and first_reply - created > 86_400)
                    score = (SATISFACTION_UNHAPPY if unhappy else SATISFACTION)[int(rnd() * 20)]
                    options = SATISFACTION_COMMENTS[score]
                    comment = options[int(rnd() * len(options))] or None
                    rated = rate_at
                    audit.append(
                        (
                            ticket_id,
                            "ticket",
                            ticket_id,
                            "rated",
                            "satisfaction_score",
                            "null",
                            str(score),
                            "customer",
                            requester.id,
                            requester.name,
                            "email",
                            instant(rate_at),
                        )
                    )
            close_at = solved + CLOSE_AFTER_SECONDS + int(rnd() * 3_600)
            if close_at <= now:
                change("closed", close_at, "system", None, self.system_name, "system")
                closed = close_at

        tags = variant.tags
        if requester.tier == "enterprise":
            tags = tuple(sorted((*tags, "enterprise")))
        for tag in tags:
            rows.tags.append((ticket_id, tag))
        tags_json = self._tags_json.get(tags)
        if tags_json is None:
            tags_json = self._tags_json[tags] = json.dumps(list(tags))
        # What tickets.service.create_ticket records (keys in its order, compact like SQL's).
        created_json = (
            f'{{"subject":{self._json(variant.subject)},"status":"new","priority":"{priority}",'
            f'"channel":"{channel}","tags":{tags_json},"requester":{self._json(requester.email)}}}'
        )
        rows.created_audit.append(
            (
                ticket_id,
                "ticket",
                ticket_id,
                "created",
                None,
                None,
                created_json,
                "customer",
                requester.id,
                requester.name,
                channel,
                instant(created),
            )
        )
        # What tickets.service.add_message records for every later message.
        message_audit = rows.message_audit
        for message in messages[first_message_index + 1 :]:
            staff = message[2] == "staff"
            public = message[5]
            message_audit.append(
                (
                    ticket_id,
                    "message",
                    message[0],
                    "reply_added" if public else "note_added",
                    None,
                    None,
                    _MESSAGE_JSON[message[2], public],
                    "user" if staff else "customer",
                    message[3] if staff else message[4],
                    agent.name if staff else requester.name,
                    message[7],
                    message[8],
                )
            )

        updated = max(updated, status_changed, last_customer, last_staff or 0, rated or 0)
        rows.tickets.append(
            (
                ticket_id,
                variant.subject,
                status,
                custom_status,
                priority,
                variant.type,
                variant.category,
                channel,
                requester.language,
                requester.id,
                requester.account_id,
                agent.id if assigned else None,
                group_id if routed < now else None,
                variant.custom_fields,
                f"{ticket_id:08x}{self.random.getrandbits(32):08x}",
                instant(created),
                instant(updated),
                _maybe(instant, first_reply),
                _maybe(instant, first_solved),
                _maybe(instant, solved),
                _maybe(instant, closed),
                instant(last_customer),
                _maybe(instant, last_staff),
                instant(status_changed),
                reopened,
                staff_replies,
                customer_messages,
                handle,
                score,
                comment,
                _maybe(instant, rated),
            )
        )
        return message_id


def _maybe(instant: Callable[[int], str], moment: int | None) -> str | None:
    return None if moment is None else instant(moment)
