"""Casting: which conversation shape, requester and agent each seeded ticket gets.

:func:`cast_tickets` walks the arrival times once, drawing from the run's generator in a fixed
order (so a seed is deterministic for its options and "now"): a requester for every ticket, then
the shapes for the pools those requesters fill, then for each ticket a shape from its pool, an
agent from the shape's group and a reply token. A ticket that arrived during an incident burst,
or so recently that its shape would run past "now", is *solo*: :func:`play_solo` plays it on its
own, as any ticket was played before shapes. Solo tickets draw from a generator of their own
(seeded from the run's) and number their messages after all the shaped tickets' messages, so
they can be played later, in whichever process has time, with the same result.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Sequence
from dataclasses import dataclass, field

from opsdesk.demo.conversations import BURST_TAIL_SECONDS, Requester, Rows, TicketPlayer
from opsdesk.demo.shapes import NIGHT_END, POOLS, Shapes, play_shapes, pool_sizes, tier_pool

# One planned ticket: id, shape, arrival (epoch seconds), requester id, agent id, first message
# id, and 32 random bits for its reply token.
PLAN_COLUMNS = ("id", "shape", "created", "requester_id", "agent_id", "first_message_id", "token")


@dataclass(frozen=True, slots=True)
class SoloTicket:
    id: int
    created: int
    requester: Requester


@dataclass(slots=True)
class Cast:
    shapes: Shapes
    # Tickets expanded from shapes, in id order (:data:`PLAN_COLUMNS`).
    planned: list[tuple[int, int, int, int, int, int, int]] = field(default_factory=list)
    # Tickets played on their own, in id order; their generator's seed and first message id.
    solo: list[SoloTicket] = field(default_factory=list)
    solo_seed: int = 0
    solo_first_message_id: int = 0
    next_ticket_id: int = 0


def cast_tickets(
    generator: random.Random,
    player: TicketPlayer,
    times: Sequence[int],
    requesters: Sequence[Requester],
    first_ticket_id: int,
    first_message_id: int,
) -> Cast:
    """Cast every ticket (``times`` sorted). The hot loop of a big seed: a million iterations of
    plain integers and list lookups."""
    rnd = generator.random
    population = len(requesters)
    # Some customers write far more than others: skew the pick towards the list's head.
    picks = [int(population * rnd() ** 1.6) for _ in times]
    requester_pools = [tier_pool(requester.tier) for requester in requesters]
    pools_of_tickets = [
        requester_pools[pick] + (created % 86_400 < NIGHT_END)
        for pick, created in zip(picks, times, strict=True)
    ]
    counts = [0] * POOLS
    for pool_number in pools_of_tickets:
        counts[pool_number] += 1
    shapes = play_shapes(player, pool_sizes(counts))
    cast = Cast(shapes)
    planned, solo, pools = cast.planned, cast.solo, shapes.pools
    spans, message_counts = shapes.spans, shapes.message_counts
    teams = {name: [agent.id for agent in team] for name, team in player.members.items()}
    shape_teams = [teams[name] for name in shapes.group_names]
    requester_ids = [requester.id for requester in requesters]
    bursts = _burst_windows(player)
    getrandbits, now = generator.getrandbits, player.now
    ticket_id, message_id, burst = first_ticket_id, first_message_id, 0
    for created, pick, pool_number in zip(times, picks, pools_of_tickets, strict=True):
        # Times are sorted: skip the bursts that ended before this ticket.
        while burst < len(bursts) and bursts[burst][1] <= created:
            burst += 1
        shape = -1
        if burst == len(bursts) or created < bursts[burst][0]:
            pool = pools[pool_number]
            shape = pool[int(rnd() * len(pool))]
            if created + spans[shape] >= now:
                shape = -1
        if shape < 0:
            solo.append(SoloTicket(ticket_id, created, requesters[pick]))
        else:
            team = shape_teams[shape]
            agent_id = team[int(rnd() * len(team))]
            planned.append(
                (ticket_id, shape, created, requester_ids[pick], agent_id, message_id, getrandbits(32))
            )
            message_id += message_counts[shape]
        ticket_id += 1
    cast.next_ticket_id, cast.solo_first_message_id = ticket_id, message_id
    cast.solo_seed = getrandbits(64)
    return cast


def _burst_windows(player: TicketPlayer) -> list[tuple[int, int]]:
    """The spans in which :meth:`TicketPlayer.burst_at` finds a burst, merged and sorted."""
    windows: list[tuple[int, int]] = []
    for start, end in sorted((burst.start, burst.end + BURST_TAIL_SECONDS) for burst in player.bursts):
        if windows and start <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], end))
        else:
            windows.append((start, end))
    return windows


def play_solo(cast: Cast, player: TicketPlayer) -> tuple[Rows, int]:
    """The solo tickets' rows, with their keyword-index documents (subject, and the texts of the
    messages in order, one per line), and the next free message id after them."""
    soloist = copy.copy(player)
    soloist.random = random.Random(cast.solo_seed)
    rows = Rows()
    messages, documents = rows.messages, rows.documents
    message_id = cast.solo_first_message_id
    for ticket in cast.solo:
        first = len(messages)
        message_id = soloist.play(ticket.id, message_id, ticket.created, ticket.requester, rows)
        documents.append((ticket.id, rows.tickets[-1][1], "\n".join([str(m[6]) for m in messages[first:]])))
    return rows, message_id
