"""The business calendar editor: several intervals a day and overnight spans typed per weekday,
time zone, holidays and custom dates, a preview of the next openings that saves nothing, readable
refusals that change nothing, and editing; on SQLite and PostgreSQL."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from opsdesk import clock
from opsdesk.outbox import OutboxJob
from opsdesk.sla import calendars
from opsdesk.sla.calendars import RECOMPUTE_JOB
from opsdesk.sla.models import BusinessCalendarRow
from tests.support.databases import BoundDatabase
from tests.support.factories import make_user
from tests.support.web import app_client, sign_in

PASSWORD = "correct horse battery"
FRIDAY_NOON_BERLIN = datetime(2026, 5, 22, 10, 0, tzinfo=UTC)  # Friday 12:00 CEST


def form(token: str, **values: str) -> dict[str, str]:
    base = {
        "csrf_token": token,
        "calendar_id": "",
        "name": "Berlin desk",
        "time_zone": "Europe/Berlin",
        "hours_mon": "08:00-12:00, 13:00-18:00",
        "hours_tue": "",
        "hours_wed": "",
        "hours_thu": "",
        "hours_fri": "08:00-12:00, 13:00-18:00, 22:00-02:00",
        "hours_sat": "",
        "hours_sun": "",
        "holiday_country": "de",
        "holiday_subdivision": "",
        "closed_dates": "2026-05-25",
        "action": "save",
    }
    return base | values


def test_openings_join_adjacent_intervals_and_cross_midnight() -> None:
    calendar = calendars.build_calendar(
        "Europe/Berlin", {"fri": [["08:00", "12:00"], ["12:00", "14:00"], ["22:00", "02:00"]]}, None, None, []
    )
    periods = calendar.openings(FRIDAY_NOON_BERLIN, 3)
    assert periods[0] == (FRIDAY_NOON_BERLIN, datetime(2026, 5, 22, 12, 0, tzinfo=UTC))
    assert periods[1] == (datetime(2026, 5, 22, 20, 0, tzinfo=UTC), datetime(2026, 5, 23, 0, 0, tzinfo=UTC))
    assert periods[2][0] == datetime(2026, 5, 29, 6, 0, tzinfo=UTC)


def test_calendar_editor_previews_validates_saves_and_edits(
    database: BoundDatabase, db: Session, tmp_path: Path
) -> None:
    admin = make_user(db, role="admin", password=PASSWORD)
    db.commit()
    client = app_client(database, tmp_path)
    token = sign_in(client, admin.email, PASSWORD)

    # The app runs in another thread: set the clock's source (clock.frozen is per thread).
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clock, "_source", lambda: FRIDAY_NOON_BERLIN)
        preview = client.post("/admin/calendars", data=form(token, action="preview"))
    assert preview.status_code == 200
    text = html.unescape(preview.text)
    assert "not saved yet" in text
    # Closed for lunch at noon: 13:00-18:00, then the overnight span; Monday 25 May is a custom
    # closed date (and Whit Monday), so the next opening is Friday 29th.
    assert "Fri 22 May 2026 08:00" not in text
    assert "Fri 22 May 2026 13:00 to 18:00 (Europe/Berlin)" in text
    assert "Fri 22 May 2026 22:00 to Sat 23 May 02:00 (Europe/Berlin)" in text
    assert "Fri 29 May 2026 08:00 to 12:00 (Europe/Berlin)" in text
    assert db.scalar(select(func.count()).select_from(BusinessCalendarRow)) == 0

    refusals = [
        (form(token, hours_mon="9 to 5"), "hours.mon: '9 to 5': write each interval as HH:MM-HH:MM"),
        (form(token, hours_mon="09:00-25:00"), "hours: mon: times are HH:MM"),
        (form(token, time_zone="Mars/Olympus"), "time_zone: unknown time zone 'Mars/Olympus'"),
        (form(token, holiday_country="XX"), "holiday_country: no holidays are known for country 'XX'"),
        (form(token, closed_dates="2026-13-01"), "closed_dates.0: '2026-13-01' is not a YYYY-MM-DD date"),
        ({**form(token), **{f"hours_{day}": "" for day in ("mon", "fri")}}, "at least one day"),
    ]
    for data, message in refusals:
        refused = client.post("/admin/calendars", data=data)
        assert refused.status_code == 422, message
        assert "The calendar was not saved" in refused.text
        assert message in html.unescape(refused.text), html.unescape(refused.text)[-3000:]
    assert db.scalar(select(func.count()).select_from(BusinessCalendarRow)) == 0

    saved = client.post("/admin/calendars", data=form(token), follow_redirects=False)
    assert saved.status_code == 303
    row = db.scalars(select(BusinessCalendarRow)).one()
    assert row.hours == {
        "mon": [["08:00", "12:00"], ["13:00", "18:00"]],
        "fri": [["08:00", "12:00"], ["13:00", "18:00"], ["22:00", "02:00"]],
    }
    assert (row.time_zone, row.holiday_country, row.closed_dates) == ("Europe/Berlin", "DE", ["2026-05-25"])
    duplicate = client.post("/admin/calendars", data=form(token))
    assert duplicate.status_code == 422
    assert "another calendar has this name" in duplicate.text

    page = client.get(f"/admin/calendars?edit={row.id}")
    assert 'value="08:00-12:00, 13:00-18:00, 22:00-02:00"' in page.text
    edited = client.post(
        "/admin/calendars",
        data=form(token, calendar_id=str(row.id), hours_fri="00:00-00:00", closed_dates=""),
        follow_redirects=False,
    )
    assert edited.status_code == 303
    db.expire_all()
    row = db.scalars(select(BusinessCalendarRow)).one()
    assert (row.hours["fri"], row.closed_dates) == ([["00:00", "00:00"]], [])
    assert db.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == RECOMPUTE_JOB)) == 1
    listing = html.unescape(client.get("/admin/calendars").text)
    assert "Fri 00:00-00:00" in listing
