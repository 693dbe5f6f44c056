"""A started server moves what it built while starting out of the garbage collector's sight
(``gc.freeze``): full collections then walk only what requests made since, instead of stalling a
request for 100 to 220 ms mid-load."""

from __future__ import annotations

import gc
from pathlib import Path

from tests.support.databases import BoundDatabase
from tests.support.web import app_client


def test_starting_the_app_freezes_what_it_built(database: BoundDatabase, tmp_path: Path) -> None:
    gc.unfreeze()  # whatever an earlier app in this test process froze
    assert gc.get_freeze_count() == 0
    client = app_client(database, tmp_path)
    with client:  # runs the app's startup
        frozen = gc.get_freeze_count()
        assert client.get("/api/v1/health").status_code == 200
    # The app, its routes and every module imported so far: far more than a handful.
    assert frozen > 10_000
