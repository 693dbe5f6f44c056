"""``opsdesk billing …``: reconcile the ledger with Stripe, run invoicing and dunning by hand."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from opsdesk.db import Database

DbOption = Annotated[
    str | None,
    typer.Option("--db", "--database-url", help="Database URL (default: SQLite in the data directory)."),
]

billing_app = typer.Typer(
    no_args_is_help=True, help="Billing operations: reconciliation, invoicing, dunning."
)


def _database(database_url: str | None) -> Database:
    """The database of the settings, with the settings handed to the payment providers."""
    from opsdesk.billing.providers import configure
    from opsdesk.config import Settings
    from opsdesk.db import Database

    overrides: dict[str, object] = {"database_url": database_url} if database_url else {}
    settings = Settings(**overrides)  # type: ignore[arg-type]
    configure(settings)
    return Database(settings.resolved_database_url)


@billing_app.command("reconcile")
def reconcile_command(
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="A Stripe charges or balance CSV export (default: ask Stripe's API)."),
    ] = None,
    open_tickets: Annotated[
        bool, typer.Option("--open-tickets", help="Open a ticket for every discrepancy found.")
    ] = False,
    db: DbOption = None,
) -> None:
    """Compare the ledger with Stripe and print one JSON object with every discrepancy."""
    from opsdesk.auth.actor import Actor
    from opsdesk.billing.service import reconciliation
    from opsdesk.cli import CliError

    if csv_file is not None and not csv_file.is_file():
        raise CliError(f"{csv_file} is not a file")
    database = _database(db)
    actor = Actor.system("opsdesk billing reconcile", via="cli")
    try:
        with database.transaction() as session:
            if csv_file is not None:
                with csv_file.open(encoding="utf-8-sig", newline="") as lines:
                    run = reconciliation.reconcile(session, actor, source="csv", csv_lines=lines)
            else:
                run = reconciliation.reconcile(session, actor, source="api")
            items = reconciliation.discrepancies_of(session, actor, run.id, limit=100_000)
            tickets = (
                [reconciliation.open_ticket(session, actor, item).id for item in items]
                if open_tickets
                else []
            )
            report = {
                "run_id": run.id,
                "source": run.source,
                "ledger_charges": run.ledger_charges,
                "provider_charges": run.provider_charges,
                "discrepancies": run.discrepancy_count,
                "by_kind": reconciliation.counts_by_kind(session, run.id),
                "items": [
                    {
                        "kind": item.kind,
                        "external_id": item.external_id,
                        "account_id": item.account_id,
                        "ledger": item.ledger_value,
                        "stripe": item.provider_value,
                        "detail": item.detail,
                        "ticket_id": item.ticket_id,
                    }
                    for item in items
                ],
                "tickets_opened": len(tickets),
            }
    finally:
        database.dispose()
    typer.echo(json.dumps(report, indent=2))


@billing_app.command("invoice-run")
def invoice_run_command(db: DbOption = None) -> None:
    """Invoice every subscription whose period has ended (the scheduled job does this hourly)."""
    from opsdesk.auth.actor import Actor
    from opsdesk.billing.service import invoicing

    database = _database(db)
    try:
        with database.transaction() as session:
            result = invoicing.run_invoicing(session, Actor.system("opsdesk billing invoice-run", via="cli"))
    finally:
        database.dispose()
    typer.echo(
        json.dumps(
            {
                "invoices": result.invoices,
                "paid": result.paid,
                "failed": result.failed,
                "canceled": result.canceled,
                "amount_by_currency": dict(result.amount_by_currency),
            }
        )
    )


@billing_app.command("dunning")
def dunning_command(db: DbOption = None) -> None:
    """Retry failed payments that are due and cancel subscriptions unpaid for too long."""
    from opsdesk.auth.actor import Actor
    from opsdesk.billing.service import dunning

    database = _database(db)
    try:
        with database.transaction() as session:
            result = dunning.run_dunning(session, Actor.system("opsdesk billing dunning", via="cli"))
    finally:
        database.dispose()
    typer.echo(json.dumps(result))


def register(app: typer.Typer) -> None:
    app.add_typer(billing_app, name="billing")
