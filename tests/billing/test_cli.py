"""``opsdesk billing reconcile`` against a Stripe CSV export, on a real SQLite file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from opsdesk import migrate
from opsdesk.db import Database
from tests.billing.builders import make_billed, make_paid_charge


def test_reconcile_command_prints_one_json_object_and_opens_tickets(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    migrate.upgrade(url)
    database = Database(url)
    try:
        with database.transaction() as session:
            billed = make_billed(session, provider="stripe")
            make_paid_charge(session, billed.customer, 2_500, charge_id="ch_cli_1")
            make_paid_charge(session, billed.customer, 4_000, charge_id="ch_cli_2")
            account_id = billed.account.id
    finally:
        database.dispose()
    export = tmp_path / "charges.csv"
    export.write_text(
        "id,Amount,Amount Refunded,Currency,Status,Customer ID\n"
        "ch_cli_1,25.00,0.00,usd,Paid,cus_x\n"
        "ch_cli_3,9.99,0.00,usd,Paid,cus_x\n",
        encoding="utf-8",
    )
    opsdesk = str(Path(sys.executable).parent / "opsdesk")
    command = [opsdesk, "billing", "reconcile", "--csv", str(export), "--open-tickets", "--db", url]
    done = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["by_kind"] == {"missing_at_provider": 1, "missing_in_ledger": 1}
    assert report["ledger_charges"] == 2
    assert report["provider_charges"] == 2
    assert report["tickets_opened"] == 2
    missing = next(item for item in report["items"] if item["kind"] == "missing_at_provider")
    assert missing["external_id"] == "ch_cli_2"
    assert missing["account_id"] == account_id

    bad = subprocess.run(
        [*command[:3], "--csv", str(tmp_path / "nope.csv"), "--db", url],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=tmp_path,
    )
    assert bad.returncode == 1
    assert "is not a file" in bad.stderr
