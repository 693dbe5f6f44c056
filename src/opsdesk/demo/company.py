"""The demo company's people: staff in groups (with contractors from vendors), customer accounts
of every tier with plans, MRR and renewals, and the people who write in.

Staff and groups go through the auth services (thirty rows, and their audit trail is real);
accounts and people are written in bulk because a million-ticket seed needs hundreds of
thousands of them.
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.orm import Session

from opsdesk.auth import service as auth_service
from opsdesk.auth.actor import Actor
from opsdesk.demo.bulk import BulkWriter
from opsdesk.demo.context import SeedContext, SeededAccount
from opsdesk.demo.texts import (
    COMPANY_FIRST,
    COMPANY_KIND,
    COMPANY_SECOND,
    CONSUMER_DOMAINS,
    FIRST_NAMES,
    LANGUAGES,
    LAST_NAMES,
    STAFF_DOMAIN,
    TIME_ZONES,
)

GROUPS: tuple[tuple[str, str], ...] = (
    ("Frontline", "First line for how-to, account and general questions."),
    ("Technical Support", "Integrations, API, performance and bugs."),
    ("Billing", "Invoices, payments, refunds and tax."),
    ("Enterprise", "Named support for enterprise accounts."),
    ("Renewals", "Quotes, upgrades, downgrades and cancellations."),
)


@dataclass(frozen=True, slots=True)
class StaffMember:
    name: str
    role: str
    groups: tuple[str, ...]
    skills: tuple[str, ...] = ()
    languages: tuple[str, ...] = ("en",)
    time_zone: str = "America/New_York"
    vendor: str | None = None
    seniority: int = 2
    capacity: int = 25


STAFF: tuple[StaffMember, ...] = (
    StaffMember("Maya Okafor", "admin", ("Frontline", "Technical Support"), ("escalations",), seniority=5),
    StaffMember("Daniel Reyes", "lead", ("Frontline",), ("coaching",), ("en", "es"), seniority=4),
    StaffMember(
        "Ingrid Lindqvist",
        "lead",
        ("Technical Support",),
        ("api", "sso"),
        ("en", "de"),
        "Europe/Berlin",
        seniority=4,
    ),
    StaffMember("Samuel Haddad", "lead", ("Billing",), ("billing", "refunds"), seniority=4),
    StaffMember("Priya Patel", "agent", ("Frontline",), ("onboarding", "reports")),
    StaffMember("Lucas Moreau", "agent", ("Frontline",), ("reports",), ("en", "fr"), "Europe/Paris"),
    StaffMember("Grace Mensah", "agent", ("Frontline",), ("mobile",)),
    StaffMember("Tomasz Nowak", "agent", ("Frontline",), ("onboarding",), ("en", "de"), "Europe/Berlin"),
    StaffMember("Ana Ferreira", "agent", ("Frontline",), ("reports",), ("en", "pt", "es"), "Europe/Madrid"),
    StaffMember("Jamal Khan", "agent", ("Frontline",), ("mobile", "onboarding"), time_zone="America/Chicago"),
    StaffMember(
        "Hiroshi Tanaka",
        "agent",
        ("Technical Support",),
        ("api", "integrations"),
        seniority=3,
        time_zone="America/Los_Angeles",
    ),
    StaffMember(
        "Elena Ivanova",
        "agent",
        ("Technical Support",),
        ("sso", "security"),
        ("en", "de"),
        "Europe/Berlin",
        seniority=3,
    ),
    StaffMember(
        "Marco Rossi",
        "agent",
        ("Technical Support",),
        ("integrations", "reports"),
        ("en", "fr"),
        "Europe/Paris",
    ),
    StaffMember("Rachel Cohen", "agent", ("Technical Support", "Enterprise"), ("api", "sso"), seniority=3),
    StaffMember("Wei Chen", "agent", ("Technical Support",), ("mobile", "api"), time_zone="Asia/Singapore"),
    StaffMember(
        "Clara Schmidt",
        "agent",
        ("Enterprise",),
        ("sso", "reports"),
        ("en", "de"),
        "Europe/Berlin",
        seniority=3,
    ),
    StaffMember("Ben Walker", "agent", ("Enterprise",), ("integrations",), seniority=3),
    StaffMember("Sofia Garcia", "billing", ("Billing",), ("billing", "tax"), ("en", "es")),
    StaffMember("Lars Andersen", "billing", ("Billing",), ("billing", "refunds"), time_zone="Europe/London"),
    StaffMember("Fatima Singh", "billing", ("Billing", "Renewals"), ("billing", "renewals")),
    StaffMember("Olivia Brown", "csm", ("Enterprise", "Renewals"), ("renewals",), seniority=4),
    StaffMember(
        "Noah Kim", "csm", ("Enterprise", "Renewals"), ("renewals",), time_zone="America/Los_Angeles"
    ),
    StaffMember("Camille Laurent", "csm", ("Renewals",), ("renewals",), ("en", "fr"), "Europe/Paris"),
    StaffMember("Isaac Levi", "csm", ("Enterprise",), ("renewals",), seniority=3),
    StaffMember(
        "Diego Santos",
        "contractor",
        ("Frontline",),
        ("onboarding",),
        ("en", "es", "pt"),
        "America/Sao_Paulo",
        "Nearshore CX",
        1,
        30,
    ),
    StaffMember(
        "Valentina Costa",
        "contractor",
        ("Frontline",),
        ("reports",),
        ("en", "es"),
        "America/Sao_Paulo",
        "Nearshore CX",
        1,
        30,
    ),
    StaffMember(
        "Carlos Martinez",
        "contractor",
        ("Frontline", "Billing"),
        ("billing",),
        ("en", "es"),
        "America/Chicago",
        "Nearshore CX",
        2,
        30,
    ),
    StaffMember(
        "Mei Wang",
        "contractor",
        ("Frontline",),
        ("mobile",),
        time_zone="Asia/Singapore",
        vendor="Lighthouse Support Partners",
        seniority=1,
        capacity=30,
    ),
    StaffMember(
        "Arjun Singh",
        "contractor",
        ("Technical Support",),
        ("integrations",),
        time_zone="Asia/Singapore",
        vendor="Lighthouse Support Partners",
        seniority=2,
        capacity=30,
    ),
    StaffMember("Nina Berg", "viewer", (), time_zone="Europe/London", seniority=3),
)

# Tier: (plan names, monthly revenue range in cents, contacts weight)
TIERS: dict[str, tuple[tuple[str, ...], tuple[int, int], float]] = {
    "enterprise": (("Enterprise",), (400_000, 4_000_000), 12.0),
    "business": (("Business",), (80_000, 400_000), 4.0),
    "self_serve": (("Starter", "Pro"), (2_900, 60_000), 1.4),
    "consumer": (("Personal", "Free"), (0, 1_200), 1.0),
}


def ascii_word(value: str) -> str:
    decomposed = unicodedata.normalize("NFKD", value)
    return "".join(
        character for character in decomposed if character.isascii() and character.isalpha()
    ).lower()


def seed_staff(session: Session, actor: Actor, context: SeedContext) -> dict[int, StaffMember]:
    """The groups and ~30 staff members; returns the staff by user id."""
    for name, description in GROUPS:
        group = auth_service.create_group(session, actor, name=name, description=description)
        context.group_ids[name] = group.id
    members: dict[int, StaffMember] = {}
    for member in STAFF:
        first, last = member.name.split(" ", 1)
        user = auth_service.create_user(
            session,
            actor,
            email=f"{ascii_word(first)}.{ascii_word(last)}@{STAFF_DOMAIN}",
            name=member.name,
            role=member.role,
            time_zone=member.time_zone,
            languages=member.languages,
            skills=member.skills,
            capacity=member.capacity,
            group_ids=[context.group_ids[name] for name in member.groups],
            vendor=member.vendor,
            seniority=member.seniority,
        )
        context.user_ids_by_role.setdefault(member.role, []).append(user.id)
        members[user.id] = member
    return members


@dataclass(frozen=True, slots=True)
class SeededPerson:
    id: int
    name: str
    first_name: str
    account_index: int
    language: str


def _company_names(generator: random.Random, count: int) -> list[tuple[str, str]]:
    combos = [(a, b, c) for a in COMPANY_FIRST for b in COMPANY_SECOND for c in COMPANY_KIND]
    generator.shuffle(combos)
    names: list[tuple[str, str]] = []
    for index in range(count):
        first, second, kind = combos[index % len(combos)]
        round_number = index // len(combos)
        suffix = f" {round_number + 1}" if round_number else ""
        name = f"{first}{second} {kind}{suffix}"
        domain = f"{first}{second}-{kind}{round_number or ''}".lower() + ".example"
        names.append((name, domain))
    return names


ACCOUNT_COLUMNS = (
    "id",
    "name",
    "tier",
    "plan_name",
    "mrr_amount_minor",
    "currency",
    "renewal_on",
    "owner_id",
    "is_hot",
    "notes",
    "created_at",
    "updated_at",
)
PERSON_COLUMNS = (
    "id",
    "name",
    "phone",
    "language",
    "time_zone",
    "primary_account_id",
    "created_at",
    "updated_at",
)
COMPANY_TABLES = ("accounts", "account_domains", "people", "person_emails", "person_accounts")


@dataclass(slots=True)
class Company:
    """The customer side of the demo company, and its rows for the bulk writer (ids assigned)."""

    accounts: list[SeededAccount]
    people: list[SeededPerson]
    account_rows: list[tuple[object, ...]]
    domain_rows: list[tuple[object, ...]]
    person_rows: list[tuple[object, ...]]
    email_rows: list[tuple[object, ...]]
    relation_rows: list[tuple[object, ...]]


def plan_accounts_and_people(writer: BulkWriter, context: SeedContext, people_count: int) -> Company:
    """Company accounts with their domains and contacts, and consumers with their own accounts
    (rows only: the caller writes them, inside its bulk load)."""
    generator = context.random
    today = context.end.date()
    consumers = max(10, int(people_count * 0.35))
    contacts = max(30, people_count - consumers)
    company_counts = {
        "enterprise": max(4, contacts // 260),
        "business": max(8, contacts // 80),
        "self_serve": max(15, contacts // 30),
    }
    csm_ids = context.user_ids_by_role.get("csm", [])
    names = _company_names(generator, sum(company_counts.values()))
    next_account = writer.next_id("accounts")
    next_domain = writer.next_id("account_domains")
    now_text = writer.instant(int(context.end.timestamp()))
    account_rows: list[tuple[object, ...]] = []
    domain_rows: list[tuple[object, ...]] = []
    accounts: list[SeededAccount] = []
    company_domains: list[str] = []
    weights: list[float] = []
    name_index = 0
    for tier, count in company_counts.items():
        plans, (low, high), weight = TIERS[tier]
        for _ in range(count):
            name, domain = names[name_index]
            name_index += 1
            plan = generator.choice(plans)
            mrr = generator.randrange(low, high) // 100 * 100
            annual = tier in ("enterprise", "business")
            renewal = today + timedelta(days=generator.randrange(1, 365 if annual else 31))
            owner = generator.choice(csm_ids) if annual and csm_ids else None
            hot = annual and generator.random() < 0.08
            notes = (
                f"Renewal {renewal:%B %Y}. Quarterly business review with their operations lead."
                if tier == "enterprise"
                else ""
            )
            account_id = next_account + len(account_rows)
            account_rows.append(
                (
                    account_id,
                    name,
                    tier,
                    plan,
                    mrr,
                    "USD",
                    renewal.isoformat(),
                    owner,
                    hot,
                    notes,
                    now_text,
                    now_text,
                )
            )
            domain_rows.append((next_domain + len(domain_rows), account_id, domain))
            accounts.append(SeededAccount(account_id, tier, name, plan, mrr, owner))
            company_domains.append(domain)
            weights.append(weight * generator.uniform(0.5, 1.5))

    next_person = writer.next_id("people")
    next_email = writer.next_id("person_emails")
    person_rows: list[tuple[object, ...]] = []
    email_rows: list[tuple[object, ...]] = []
    people: list[SeededPerson] = []
    languages = [code for code, _ in LANGUAGES]
    language_weights = [share for _, share in LANGUAGES]
    seen_emails: set[str] = set()
    company_of_contact = generator.choices(range(len(company_domains)), weights=weights, k=contacts)
    for account_index in company_of_contact:
        person_id = next_person + len(person_rows)
        first, last = generator.choice(FIRST_NAMES), generator.choice(LAST_NAMES)
        email = f"{ascii_word(first)}.{ascii_word(last)}@{company_domains[account_index]}"
        if email in seen_emails:
            email = f"{ascii_word(first)}.{ascii_word(last)}{person_id}@{company_domains[account_index]}"
        seen_emails.add(email)
        language = generator.choices(languages, language_weights)[0]
        phone = f"+1 555 01{generator.randrange(10, 99)} {generator.randrange(1000, 9999)}"
        person_rows.append(
            (
                person_id,
                f"{first} {last}",
                phone if generator.random() < 0.3 else None,
                language,
                generator.choice(TIME_ZONES),
                accounts[account_index].id,
                now_text,
                now_text,
            )
        )
        email_rows.append((next_email + len(email_rows), person_id, email, True))
        people.append(SeededPerson(person_id, f"{first} {last}", first, account_index, language))
    del seen_emails

    consumer_plans, (low, high), _ = TIERS["consumer"]
    for _ in range(consumers):
        person_id = next_person + len(person_rows)
        account_id = next_account + len(account_rows)
        first, last = generator.choice(FIRST_NAMES), generator.choice(LAST_NAMES)
        plan = generator.choice(consumer_plans)
        mrr = 0 if plan == "Free" else generator.choice((900, 1_200))
        renewal = today + timedelta(days=generator.randrange(1, 31))
        account_rows.append(
            (
                account_id,
                f"{first} {last}",
                "consumer",
                plan,
                mrr,
                "USD",
                renewal.isoformat() if mrr else None,
                None,
                False,
                "",
                now_text,
                now_text,
            )
        )
        accounts.append(SeededAccount(account_id, "consumer", f"{first} {last}", plan, mrr, None))
        language = generator.choices(languages, language_weights)[0]
        email = f"{ascii_word(first)}.{ascii_word(last)}{person_id}@{generator.choice(CONSUMER_DOMAINS)}"
        person_rows.append(
            (
                person_id,
                f"{first} {last}",
                None,
                language,
                generator.choice(TIME_ZONES),
                account_id,
                now_text,
                now_text,
            )
        )
        email_rows.append((next_email + len(email_rows), person_id, email, True))
        people.append(SeededPerson(person_id, f"{first} {last}", first, len(accounts) - 1, language))

    # A few consultants who also work for a second company account.
    relation_rows: list[tuple[object, ...]] = []
    next_relation = writer.next_id("person_accounts")
    company_total = len(company_domains)
    for person in people[:contacts:97]:
        other = generator.randrange(company_total)
        if other != person.account_index:
            relation_rows.append(
                (next_relation + len(relation_rows), person.id, accounts[other].id, "consultant")
            )

    return Company(accounts, people, account_rows, domain_rows, person_rows, email_rows, relation_rows)


PRODUCT_AREAS = ("Dashboards", "Reports", "Time tracking", "Invoicing", "Integrations", "Mobile app", "API")


def seed_definitions(writer: BulkWriter, context: SeedContext) -> int:
    """Custom fields and the "Waiting on engineering" status; returns that status's id."""
    now_text = writer.instant(int(context.end.timestamp()))
    field_id = writer.next_id("custom_field_definitions")
    writer.insert(
        "custom_field_definitions",
        ("id", "key", "label", "field_type", "options", "is_required", "is_active", "position", "created_at"),
        [
            (
                field_id,
                "product_area",
                "Product area",
                "dropdown",
                json.dumps(list(PRODUCT_AREAS)),
                False,
                True,
                1,
                now_text,
            ),
            (field_id + 1, "affected_users", "Affected users", "number", "[]", False, True, 2, now_text),
            (
                field_id + 2,
                "engineering_ticket",
                "Engineering ticket",
                "text",
                "[]",
                False,
                True,
                3,
                now_text,
            ),
        ],
    )
    status_id = writer.next_id("ticket_statuses")
    writer.insert(
        "ticket_statuses",
        ("id", "name", "category", "description", "is_active", "position"),
        [(status_id, "Waiting on engineering", "on_hold", "A bug or change is with engineering.", True, 1)],
    )
    writer.move_sequence("custom_field_definitions")
    writer.move_sequence("ticket_statuses")
    return status_id
