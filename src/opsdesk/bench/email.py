"""``opsdesk bench email``: inbound emails parsed, threaded and stored per second on SQLite, the
p99 per message, and threading errors on the test corpus. Prints one JSON object.

Each message takes the full path of a real one (store the raw bytes and commit, then parse,
thread, create or extend the ticket, queue the receipt, commit), one after another. A mix of new
tickets and replies (threaded by In-Reply-To, by the reply address, or by the subject tag).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import tempfile
import time
from email.message import EmailMessage
from pathlib import Path
from typing import Annotated

import typer


def _email(number: int, *, sender: str, subject: str, in_reply_to: str | None, to: str) -> bytes:
    message = EmailMessage()
    message["From"] = f"Customer {number} <{sender}>"
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = f"<bench-{number}@customer.example>"
    if in_reply_to:
        message["In-Reply-To"] = f"<{in_reply_to}>"
        message["References"] = f"<{in_reply_to}>"
    message.set_content(
        f"Hello,\n\nmessage {number}: the export of invoices fails with error {number % 500}.\n\n"
        "On Mon, 2 Mar 2026 at 09:00, Support <support@example.com> wrote:\n> earlier text\n"
    )
    message.add_alternative(f"<p>Hello,</p><p>message {number}: the export fails.</p>", subtype="html")
    return message.as_bytes()


def register(bench_app: typer.Typer) -> None:
    @bench_app.command("email")
    def email_bench(
        messages: Annotated[int, typer.Option(help="Synthetic emails to ingest.")] = 2000,
        seed: Annotated[int, typer.Option(help="Random seed.")] = 7,
    ) -> None:
        """Inbound email throughput and latency on SQLite; threading errors on the corpus."""
        from sqlalchemy import select

        from opsdesk import migrate
        from opsdesk.channels import inbound_pipeline
        from opsdesk.channels.corpus import replay_corpus
        from opsdesk.config import Settings
        from opsdesk.db import Database
        from opsdesk.tickets.models import Ticket

        randomizer = random.Random(seed)
        with tempfile.TemporaryDirectory(prefix="opsdesk-bench-email-") as directory:
            root = Path(directory)
            url = f"sqlite:///{root / 'bench.db'}"
            migrate.upgrade(url)
            database = Database(url)
            settings = Settings(data_dir=root / "data", email_throttle_count=1_000_000)
            settings.ensure_dirs()
            corpus = replay_corpus(database, settings)

            # Build every message first; only ingestion is timed.
            planned: list[tuple[bytes, int | None]] = []  # raw, index of the thread's first message
            first_of_thread: list[int] = []
            for number in range(messages):
                if first_of_thread and randomizer.random() < 0.4:
                    thread = randomizer.choice(first_of_thread)
                    planned.append(
                        (
                            _email(
                                number,
                                sender=f"c{thread}@customer.example",
                                subject=f"Re: Issue {thread}",
                                in_reply_to=f"bench-{thread}@customer.example",
                                to="support@example.com",
                            ),
                            thread,
                        )
                    )
                else:
                    first_of_thread.append(number)
                    planned.append(
                        (
                            _email(
                                number,
                                sender=f"c{number}@customer.example",
                                subject=f"Issue {number}",
                                in_reply_to=None,
                                to="support@example.com",
                            ),
                            None,
                        )
                    )
            latencies: list[float] = []
            ticket_of: dict[int, int | None] = {}
            threading_errors = 0
            started = time.perf_counter()
            cpu_started = time.process_time()
            for index, (raw, thread_start) in enumerate(planned):
                begin = time.perf_counter()
                result = inbound_pipeline.ingest_email(database, raw, source="bench", settings=settings)
                latencies.append((time.perf_counter() - begin) * 1000)
                ticket_of[index] = result.ticket_id
                if result.status != "processed" or (
                    thread_start is not None and result.ticket_id != ticket_of[thread_start]
                ):
                    threading_errors += 1
            elapsed = time.perf_counter() - started
            cpu_seconds = time.process_time() - cpu_started
            with database.transaction(write=False) as session:
                tickets = len(session.scalars(select(Ticket.id)).all())
            database.dispose()
        latencies.sort()
        print(
            json.dumps(
                {
                    "bench": "email",
                    "database": "sqlite",
                    "messages": messages,
                    "new_tickets": len(first_of_thread),
                    "replies": messages - len(first_of_thread),
                    "tickets_in_database": tickets,
                    "emails_per_second": round(messages / elapsed, 1),
                    "p50_ms": round(statistics.median(latencies), 2),
                    "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2),
                    "max_ms": round(latencies[-1], 2),
                    # CPU time per email: comparable on a shared, loaded machine (wall time is not).
                    "cpu_ms_per_email": round(cpu_seconds * 1000 / messages, 2),
                    "load_average_1m": round(os.getloadavg()[0], 2),
                    "threading_errors_synthetic": threading_errors,
                    "corpus_messages": corpus.messages,
                    "threading_errors_corpus": corpus.threading_errors,
                    "corpus_problems": corpus.problems,
                    "targets": {"emails_per_second": 200, "p99_ms": 50, "threading_errors": 0},
                }
            )
        )
