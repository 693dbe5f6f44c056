"""What a seeding run is asked to make (:class:`SeedOptions`) and what it made so far
(:class:`SeedContext`), handed to every domain's ``seed(session, context)``.

Ids are ranges or lists of the rows the seeder wrote, so a domain can attach its own demo data
(SLA policies, plans, invoices, taxonomy) to the same company without querying for it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class SeedOptions:
    tickets: int = 2_000
    days: int = 90
    seed: int = 1
    # Run the other domains' seed functions (plans, invoices...); benchmarks that only need
    # tickets turn them off.
    with_domains: bool = True
    # Use both cores (None: for big seeds): on SQLite a child process writes messages and tickets
    # while this one writes the rest, on PostgreSQL a second connection the audit trail.
    parallel: bool | None = None


@dataclass(frozen=True, slots=True)
class SeededAccount:
    id: int
    tier: str
    name: str
    plan_name: str
    mrr_amount_minor: int
    owner_id: int | None


@dataclass(slots=True)
class SeedContext:
    """The seeded company, for the domains' own seed functions.

    ``random`` is the run's generator: drawing from it keeps a domain's data deterministic for a
    given ``--seed``. ``start``..``end`` is the span the tickets were spread over.
    """

    options: SeedOptions
    random: random.Random
    dialect: str
    start: datetime
    end: datetime
    admin_user_id: int
    user_ids_by_role: dict[str, list[int]] = field(default_factory=dict)
    group_ids: dict[str, int] = field(default_factory=dict)
    accounts: list[SeededAccount] = field(default_factory=list)
    person_ids: range = range(0)
    ticket_ids: range = range(0)
    message_count: int = 0
    categories: tuple[str, ...] = ()
    # Wall-clock seconds of the company and ticket load, and of each domain's seed function.
    core_seconds: float = 0.0
    domain_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def staff_user_ids(self) -> list[int]:
        return [user_id for ids in self.user_ids_by_role.values() for user_id in ids]

    def account_ids(self, tier: str | None = None) -> list[int]:
        return [account.id for account in self.accounts if tier is None or account.tier == tier]
