"""Conversation shapes: whole tickets played once and reused by many tickets.

Playing a ticket (:class:`~opsdesk.demo.conversations.TicketPlayer`) costs tens of microseconds of
Python per ticket, and writing its dozen rows from Python costs as much again. A million tickets
do not need a million different conversations: they need realistic ones, each with its own
requester, agent, arrival time and ids. So the seeder plays a pool of *shapes* (complete
conversations with their times relative to the ticket's arrival and with placeholders for the
people in them) and the database expands every ticket from its shape in one ``INSERT … SELECT``
per table (:mod:`opsdesk.demo.expansion`), at the speed of its own engine.

A shape is played with the same player and rules as any ticket, so every rule of the
conversations module holds for the expanded rows. What a shape cannot know is replaced per ticket:

- the requester (id, name, first name, email, language, account) and the agent (id, name, first
  name) by the placeholders below, which the expansion swaps for the ticket's own;
- the arrival time: a shape's instants are seconds after the arrival. The player's only uses of
  the arrival besides that are the night shift (tickets arriving before 06:00 UTC wait longer) and
  incident bursts; shapes are pooled by tier and night, and tickets arriving in a burst, or so
  close to "now" that their shape would run past it, are played on their own instead.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsdesk.demo.conversations import TICKET_COLUMNS, Agent, Requester, Rows, TicketPlayer

# Placeholders the expansion replaces: ids are negative (no real row has one), texts are control
# characters (no seeded text has one).
REQUESTER_ID = -1
AGENT_ID = -2
REQUESTER_FIRST_NAME = "\x01"
AGENT_FIRST_NAME = "\x02"
REQUESTER_NAME = "\x03"
AGENT_NAME = "\x04"
REQUESTER_EMAIL = "\x05"
# How the player's JSON writes the requester's email placeholder in the "created" audit event.
REQUESTER_EMAIL_JSON = '"\\u0005"'
TIERS = ("enterprise", "business", "self_serve", "consumer")
NIGHT_END = 6 * 3_600
# The player's "now" for shapes: nothing is cut off.
NEVER = 2**62
# Tickets per shape in a big seed: 50,000 conversations for a million tickets.
TICKETS_PER_SHAPE = 20
# Below this many tickets a pool has one shape per ticket.
MIN_SHAPES = 2_000

# Positions in the player's ticket row (``TICKET_COLUMNS``): of the instants (kept by a shape as
# offsets from the arrival), and of the columns a shape keeps; the others (id, language,
# requester, account, reply token) come from the ticket's plan.
_INSTANT_COLUMNS = tuple(position for position, name in enumerate(TICKET_COLUMNS) if name.endswith("_at"))
_KEPT_POSITIONS = (*range(1, 8), 11, 12, 13, *range(15, len(TICKET_COLUMNS)))


# A pool: the requester's tier and whether the ticket arrives at night, as one small integer
# (``2 * tier index + night``; the casting loop computes it a million times).
POOLS = 2 * len(TIERS)


def tier_pool(tier: str) -> int:
    """The pool of a daytime ticket of this tier; add 1 for a night-time one."""
    return 2 * TIERS.index(tier)


@dataclass(slots=True)
class Shapes:
    """The played shapes as rows for the expansion's source tables, by shape number.

    ``tickets``: (shape, then the ticket columns without id, language, requester, account, reply
    token; instants as offsets; assignee as :data:`AGENT_ID` or None); ``messages``: (shape,
    position, author kind, staff?, public?, text, channel, offset); ``tags``: (shape, tag);
    ``audit``: (shape, position, entity type, message position or None, action, field, old, new,
    actor kind, actor id placeholder, actor name placeholder, via, offset); ``documents``:
    (shape, the keyword index's body with placeholders).
    """

    tickets: list[tuple[object, ...]] = field(default_factory=list)
    messages: list[tuple[object, ...]] = field(default_factory=list)
    tags: list[tuple[object, ...]] = field(default_factory=list)
    audit: list[tuple[object, ...]] = field(default_factory=list)
    documents: list[tuple[object, ...]] = field(default_factory=list)
    # Per shape: the last instant (seconds after arrival), message count and group name.
    spans: list[int] = field(default_factory=list)
    message_counts: list[int] = field(default_factory=list)
    group_names: list[str] = field(default_factory=list)
    # Shape numbers by pool (:data:`POOLS` lists).
    pools: list[list[int]] = field(default_factory=lambda: [[] for _ in range(POOLS)])


def pool_sizes(counts: Sequence[int]) -> list[int]:
    """How many shapes each pool gets for this many tickets in it."""
    return [min(count, max(MIN_SHAPES, count // TICKETS_PER_SHAPE)) for count in counts]


def play_shapes(player: TicketPlayer, sizes: Sequence[int]) -> Shapes:
    """Play ``sizes[pool]`` shapes for each pool with ``player``'s generator, variants and rules."""
    shapes = Shapes()
    agent = Agent(AGENT_ID, AGENT_NAME, AGENT_FIRST_NAME)
    shaper = copy.copy(player)
    shaper.now = NEVER
    shaper.bursts = []
    shaper.members = {name: [agent] for name in player.members}
    group_names = {group_id: name for name, group_id in player.groups.items()}
    for pool, size in enumerate(sizes):
        tier, night = TIERS[pool // 2], bool(pool % 2)
        # Any day will do: only the time of day (the night shift) matters to the player.
        arrival = 3_600 if night else 12 * 3_600
        shaper.instant = _offset_from(arrival)  # type: ignore[assignment]  # ints, not texts
        requester = Requester(
            REQUESTER_ID, REQUESTER_NAME, REQUESTER_FIRST_NAME, 0, tier, "", REQUESTER_EMAIL
        )
        numbers = shapes.pools[pool]
        for _ in range(size):
            rows = Rows()
            shaper.play(0, 0, arrival, requester, rows)
            number = len(shapes.spans)
            numbers.append(number)
            _add_shape(shapes, number, rows, group_names)
    return shapes


def _offset_from(arrival: int) -> object:
    def offset(moment: int) -> int:
        return moment - arrival

    return offset


def _add_shape(shapes: Shapes, number: int, rows: Rows, group_names: dict[int, str]) -> None:
    (ticket,) = rows.tickets
    offsets = [value for position in _INSTANT_COLUMNS if isinstance(value := ticket[position], int)]
    shapes.spans.append(max(offsets))
    shapes.message_counts.append(len(rows.messages))
    # Shapes are never cut off by "now", so every shape was routed to a group: its agent is
    # drawn from that group's members.
    group_id = ticket[12]
    assert isinstance(group_id, int)
    shapes.group_names.append(group_names[group_id])
    shapes.tickets.append((number, *(ticket[position] for position in _KEPT_POSITIONS)))
    shapes.messages.extend(
        (
            number,
            message[0],
            message[2],
            message[2] == "staff",
            message[5],
            message[6],
            message[7],
            message[8],
        )
        for message in rows.messages
    )
    shapes.tags.extend((number, tag) for _, tag in rows.tags)
    audit = (*rows.created_audit, *rows.audit, *rows.message_audit)
    shapes.audit.extend(
        (
            number,
            position,
            event[1],
            event[2] if event[1] == "message" else None,
            *event[3:],
        )
        for position, event in enumerate(audit)
    )
    shapes.documents.append((number, "\n".join(str(message[6]) for message in rows.messages)))


SHAPE_TICKET_COLUMNS = tuple(TICKET_COLUMNS[position] for position in _KEPT_POSITIONS)
