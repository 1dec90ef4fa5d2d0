"""Alembic upgrades a database made by the broker before migrations existed, keeping every row.

``data/broker_v1.sql`` is a dump of a SQLite file written by the first live broker (schema
version 1): three sites (one deregistered), offers, six jobs in every state, five assignments,
a planning round, its clock origin and admin token hash (of ``admin-token-for-tests``).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from api.app import create_app
from api.clock import Clock
from api.db import Database, schema_revision, upgrade_schema
from scenarios.cli import main
from tests.api.conftest import bearer, served

DUMP = Path(__file__).parent / "data" / "broker_v1.sql"
OLD_ADMIN = "admin-token-for-tests"


def v1_database(tmp_path: Path) -> Path:
    path = tmp_path / "v1.db"
    with sqlite3.connect(path) as con:
        con.executescript(DUMP.read_text())
    return path


def rows(path: Path, table: str, columns: str = "*") -> list[tuple]:
    with sqlite3.connect(path) as con:
        return sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)


def v1_rows(table: str, columns: str = "*") -> list[tuple]:
    """Rows of the v1 dump itself (loaded into memory with its own schema)."""
    with sqlite3.connect(":memory:") as con:
        con.executescript(DUMP.read_text())
        return sorted(con.execute(f"SELECT {columns} FROM {table}").fetchall(), key=repr)


# Columns both schemas have: every value in them must survive the upgrade.
KEPT = {
    "meta": "key, value",
    "jobs": "id, home_site, job_type, gpus, work_steps, submit_h, deadline_h, dataset_gb, "
            "status, attempts, submitted_at_s",
    "plan_rounds": "*",
    "sites": "id, number, zone, gpus, pue, egress_usd_per_gb, token_sha256, registered_at_s, "
             "deregistered_at_s",
    "offers": "site_id, sequence, start_h, slot_h, free_gpus, price_usd_per_mwh, "
              "carbon_g_per_kwh, received_at_s",
    "assignments": "id, job_id, site_id, gpu_type, round_id, status, start_h, transfer_h, "
                   "runtime_h, energy_kwh, carbon_kg, energy_cost_usd, transfer_cost_usd, "
                   "created_at_s, acknowledged_at_s, started_at_s, completed_at_s",
}


def test_upgrade_keeps_every_row(tmp_path):
    path = v1_database(tmp_path)
    assert len(v1_rows("jobs")) == 6 and len(v1_rows("assignments")) == 5
    db = Database(f"sqlite:///{path}")
    assert schema_revision(db.engine) is None
    upgrade_schema(db.engine)
    assert schema_revision(db.engine) == "0007"
    db.dispose()
    for table, columns in KEPT.items():
        assert rows(path, table, columns) == v1_rows(table, columns), table
    # 0003: every assignment carries its GPU count, its job's for rows planned before
    counts = rows(path, "assignments a JOIN jobs j ON j.id = a.job_id", "a.gpus, j.gpus")
    assert len(counts) == 5 and all(a == j and a is not None for a, j in counts)
    assert rows(path, "jobs", "min_gpus, max_gpus") == [(None, None)] * 6
    # 0005: no reported run time, no heartbeat recorded yet
    assert rows(path, "assignments", "reported_runtime_h") == [(None,)] * 5
    assert all(h is None for (h,) in rows(path, "offers", "heartbeat_at_s"))
    assert rows(path, "jobs", "reference_gpu_h") == [(None,)] * 6
    # 0006: no job preemptible, no work done before a pause, no directive
    assert rows(path, "jobs", "preemptible, done_steps, paused_site") == [(0, 0.0, None)] * 6
    assert rows(path, "assignments", "directive") == [(None,)] * 5
    assert dict(rows(path, "sites", "id, state")) == {
        "north": "active", "south": "active", "gone": "deregistered"}
    # leases of acknowledged and running jobs count from their last sign of life
    for renewed, acked, started in rows(path, "assignments",
                                        "renewed_at_s, acknowledged_at_s, started_at_s"):
        assert renewed == (started if started is not None else acked)


@pytest.mark.anyio
async def test_the_broker_serves_an_upgraded_database(tmp_path, make_settings, wall):
    path = v1_database(tmp_path)
    settings = make_settings(db_url=f"sqlite:///{path}", admin_token=None)
    app = create_app(settings, Clock(1.0, wall))
    async with served(app) as c:
        admin = bearer(OLD_ADMIN)  # its stored hash still works
        jobs = (await c.get("/v1/jobs", headers=admin)).json()
        assert sorted(j["status"] for j in jobs) == [
            "acknowledged", "assigned", "completed", "queued", "queued", "running"]
        sites = {s["id"]: s["status"] for s in (await c.get("/v1/sites", headers=admin)).json()}
        assert sites["gone"] == "deregistered"
        summary = (await c.get("/v1/summary", headers=admin)).json()
        assert summary["jobs"]["completed"] == 1 and summary["energy_kwh"] > 0


def test_db_upgrade_command(tmp_path, capsys):
    path = v1_database(tmp_path)
    assert main(["db", "upgrade", "--db", f"sqlite:///{path}"]) == 0
    assert capsys.readouterr().out.strip().endswith("schema none -> 0007")
    assert main(["db", "upgrade", "--db", str(path)]) == 0  # a plain path is a SQLite file
    assert capsys.readouterr().out.strip().endswith("schema 0007 -> 0007")
    assert main(["db", "upgrade", "--db", str(tmp_path / "no" / "such.db")]) == 2
    assert "does not exist" in capsys.readouterr().err
