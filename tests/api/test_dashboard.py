"""``/dashboard``: the page and its headers through httpx, the rounds route, and the page in a
real headless Chromium against a real ``carbonfed serve`` and two ``carbonfed agent`` processes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import bearer, job_body, offer_body, site_body
from tests.api.processes import (
    ADMIN,
    HOST,
    V100_STEPS_PER_S,
    agent_config,
    carbonfed,
    enrol,
    free_port,
)

# --- the page and the rounds route, through httpx's ASGI transport ----------------------------


def _sha256(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


@pytest.mark.anyio
async def test_dashboard_is_static_offline_and_locked_down_by_csp(broker):
    r = await broker.client.get("/dashboard")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    page = r.text
    # served offline: no asset from anywhere else, and no data templated into the page
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "http://" not in page and "https://" not in page
    csp = dict(part.strip().split(" ", 1) for part in r.headers["content-security-policy"]
               .split(";"))
    assert csp["default-src"] == "'none'" and csp["connect-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'" and csp["form-action"] == "'none'"
    [script] = re.findall(r"<script>(.*?)</script>", page, flags=re.DOTALL)
    [style] = re.findall(r"<style>(.*?)</style>", page, flags=re.DOTALL)
    # only the page's own inline blocks may run: by hash, never 'unsafe-inline'
    assert csp["script-src"] == _sha256(script)
    assert csp["style-src"] == _sha256(style)
    assert "unsafe" not in r.headers["content-security-policy"]
    # the page writes data only as text; it never stores the token
    assert "innerHTML" not in script and "insertAdjacentHTML" not in script
    assert "localStorage" not in script and "sessionStorage" not in script
    assert "document.cookie" not in script
    assert r.headers["cache-control"] == "no-store"
    assert "/dashboard" not in (await broker.client.get("/openapi.json")).json()["paths"]


@pytest.mark.anyio
async def test_rounds_route_lists_the_last_rounds_newest_first_admin_only(broker):
    c = broker.client
    north = (await c.post("/v1/sites", json=site_body("north", {"V100": 2}))).json()["token"]
    assert (await c.get("/v1/plans", headers=broker.admin())).json() == []
    await c.put("/v1/sites/north/offer", json=offer_body(1, {"V100": 2}), headers=bearer(north))
    await c.post("/v1/jobs", json=job_body("j1", "north"), headers=broker.admin())
    first = (await c.post("/v1/plans", headers=broker.admin())).json()
    second = (await c.post("/v1/plans", headers=broker.admin())).json()  # queue now empty
    third = (await c.post("/v1/plans", headers=broker.admin())).json()

    listed = (await c.get("/v1/plans", headers=broker.admin())).json()
    assert [r["round_id"] for r in listed] == [third["round_id"], second["round_id"],
                                               first["round_id"]]
    oldest = listed[-1]
    assert oldest["status"] == first["status"] == "optimal"
    assert oldest["assigned"] == 1 and oldest["queued"] == 1
    assert oldest["objective_usd"] == pytest.approx(first["objective_usd"])
    assert oldest["gap"] == first["gap"] and oldest["method"] == first["method"]
    assert oldest["created_at_s"] == pytest.approx(broker.wall.now_s)
    assert listed[0]["status"] == "empty-queue" and listed[0]["assigned"] == 0

    one = (await c.get("/v1/plans", params={"limit": 1}, headers=broker.admin())).json()
    assert [r["round_id"] for r in one] == [third["round_id"]]
    assert (await c.get("/v1/plans", params={"limit": 0},
                        headers=broker.admin())).status_code == 422
    assert (await c.get("/v1/plans", params={"limit": 101},
                        headers=broker.admin())).status_code == 422
    assert (await c.get("/v1/plans", headers=bearer(north))).status_code == 403
    assert (await c.get("/v1/plans")).status_code == 401


# --- in a real browser ------------------------------------------------------------------------

SITES = [
    {"id": "north", "zone": "hydro", "pue": 1.1, "gpus": {"V100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 30},
                 "price_usd_per_mwh": {"kind": "constant", "value": 50}}},
    {"id": "south", "zone": "coal", "pue": 1.1, "gpus": {"V100": 1},
     "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 500},
                 "price_usd_per_mwh": {"kind": "constant", "value": 50}}},
]
LIVE = {"assigned", "acknowledged", "running"}
ROWS_JS = """
return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr')).map(tr => ({
  job: tr.dataset.job || null, site: tr.dataset.site || null,
  status: (tr.querySelector('[data-status]') || {}).textContent || null,
  cells: Array.from(tr.cells).map(td => td.textContent)}));
"""


def _job(job_id: str, home: str, hours: float, dataset_gb: float = 10.0) -> dict:
    # equal prices: 10 GB of data at 0.02 USD/GB egress keep a job at home; without data a
    # job runs wherever a GPU is free now rather than wait
    return {"id": job_id, "home_site": home, "job_type": "resnet50", "gpus": 1,
            "work_steps": V100_STEPS_PER_S * 3600.0 * hours, "dataset_gb": dataset_gb}


def test_dashboard_in_chromium_follows_a_job_and_keeps_sites_apart(tmp_path, processes, browser):
    started = time.monotonic()
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN, "CARBONFED_HORIZON_SLOTS": "6",
           "CARBONFED_SOLVER_TIME_LIMIT_S": "5"}
    # no planning schedule: the test plans by hand, so the job is queued long enough to be
    # seen in the queue before a round takes it
    processes.append(carbonfed("serve", "--db", f"sqlite:///{tmp_path / 'broker.db'}",
                               "--host", HOST, "--port", str(port), "--time-scale", "3600",
                               "--stale-after-s", "30", env=env, log=tmp_path / "broker.log"))
    admin = httpx.Client(base_url=url, headers=bearer(ADMIN), timeout=10)

    def until(check: Callable[[], object], what: str, timeout_s: float = 45.0) -> None:
        """Poll ``check`` until it is true; on time-out keep a screenshot and say what the
        page showed (the machine is shared: generous deadlines, no fixed sleeps)."""
        ends = time.monotonic() + timeout_s
        while time.monotonic() < ends:
            dead = [p.args for p in processes if p.poll() is not None]
            assert not dead, f"while waiting for {what}: exited early: {dead}"
            try:
                if check():
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        browser.save_screenshot(str(tmp_path / "timeout.png"))
        text = browser.find_element("tag name", "body").text
        raise AssertionError(f"timed out waiting for {what}; the page showed:\n{text}")

    until(lambda: admin.get("/v1/health").status_code == 200, "the broker")
    state_files = {}
    for site in SITES:
        token = enrol(site, url, env)
        state_files[site["id"]] = tmp_path / f"{site['id']}.state.json"
        config = agent_config(site, tmp_path, offer_interval_s=0.5, poll_interval_s=0.3,
                              state_file=str(state_files[site["id"]]))
        # one argument with "=": a token may begin with "-", which argparse would take for
        # an option if it came as an argument of its own
        processes.append(carbonfed("agent", str(config), "--broker", url,
                                   f"--enrolment-token={token}", env=env,
                                   log=tmp_path / f"{site['id']}.log"))
    until(lambda: all(s["status"] == "active" for s in admin.get("/v1/sites").json())
          and len(admin.get("/v1/sites").json()) == 2, "both agents registered and offering")

    browser.get(f"{url}/dashboard")

    def rows(table: str) -> list[dict]:
        return browser.execute_script(ROWS_JS, table)

    def log_in(token: str, site: str = "") -> None:
        for field, value in (("token", token), ("site", site)):
            browser.find_element("id", field).clear()
            browser.find_element("id", field).send_keys(value)
        browser.find_element("css selector", "#login button[type=submit]").click()

    log_in(ADMIN)
    until(lambda: {r["site"]: r["status"] for r in rows("sites")}
          == {"north": "active", "south": "active"}, "both sites listed as active")
    north_row = next(r for r in rows("sites") if r["site"] == "north")
    assert north_row["cells"][4] == "V100 2" and north_row["cells"][6] == "30"  # fleet, carbon
    assert north_row["cells"][7] == "50.0"  # price
    assert browser.find_element("id", "queue-panel").is_displayed()

    # jobs submitted now show up in the queue, then assigned, then finished: no reload.
    # d1 runs at home (north), d2 at home (south, its one GPU), d3 (south's, no data) at
    # north: the ledger gets a row, south pays north
    assert admin.post("/v1/jobs/batch", json={"jobs": [
        _job("d1", "north", 6.0), _job("d2", "south", 6.0),
        _job("d3", "south", 6.0, dataset_gb=0.0)]}).status_code == 201
    until(lambda: {r["job"] for r in rows("queue")} == {"d1", "d2", "d3"}, "the jobs queued")
    assert admin.post("/v1/plans").status_code == 201

    def shown(job: str) -> dict | None:
        return next((r for r in rows("assignments") if r["job"] == job), None)

    until(lambda: (shown("d1") or {}).get("status") in LIVE, "d1 assigned to a site")
    assert shown("d1")["site"] == "north"  # type: ignore[index]
    assert not any(r["job"] == "d1" for r in rows("queue")), "an assigned job left the queue"
    until(lambda: rows("rounds") and rows("rounds")[0]["status"] == "optimal",
          "the round listed")
    until(lambda: all((shown(j) or {}).get("status") == "completed"
                      for j in ("d1", "d2", "d3")), "every job finished")
    assert {r["job"]: r["site"] for r in rows("assignments")} == {
        "d1": "north", "d2": "south", "d3": "north"}
    assert browser.find_element("id", "totals").text.count("completed 3") == 1
    until(lambda: [(r["job"], r["cells"][1], r["cells"][2]) for r in rows("ledger")]
          == [("d3", "south", "north")], "the ledger row for d3")
    balances = {r["site"]: float(r["cells"][1]) for r in rows("balances")}
    assert set(balances) == {"north", "south"} and balances["north"] > 0
    assert balances["north"] == pytest.approx(-balances["south"], abs=1e-4)
    browser.save_screenshot(str(tmp_path / "dashboard-admin.png"))

    # the token was never put anywhere but the page's memory
    assert "token" not in browser.current_url and ADMIN not in browser.current_url
    assert browser.execute_script("return document.cookie") == ""
    assert browser.execute_script("return localStorage.length + sessionStorage.length") == 0
    assert browser.find_element("id", "token").get_attribute("value") == ""
    assert ADMIN not in browser.page_source

    # a site's token: that site's rows only, no admin panels
    browser.find_element("id", "logout").click()
    north_token = json.loads(Path(state_files["north"]).read_text())["token"]
    log_in(north_token, "north")
    until(lambda: [r["site"] for r in rows("sites")] == ["north"]
          and sorted(r["job"] for r in rows("assignments")) == ["d1", "d3"], "north's own rows")
    assert not browser.find_element("id", "queue-panel").is_displayed()
    assert not browser.find_element("id", "rounds-panel").is_displayed()
    assert {r["site"] for r in rows("assignments")} == {"north"}
    assert [r["site"] for r in rows("balances")] == ["north"]
    # the ledger row where north is paid (by south) is north's; nothing else of south's shows
    until(lambda: [r["job"] for r in rows("ledger")] == ["d3"], "north's ledger row")
    assert "d2" not in browser.find_element("id", "board").text
    assert "coal" not in browser.find_element("id", "board").text  # south's zone
    browser.save_screenshot(str(tmp_path / "dashboard-north.png"))

    # a site token with another site's id is refused at login
    browser.find_element("id", "logout").click()
    log_in(north_token, "south")
    until(lambda: "may not act for site south" in browser.find_element("id", "login-error").text,
          "the refusal")
    assert not browser.find_element("id", "board").is_displayed()

    # refused requests the page handles (403 probing the token's rights, 404 favicon) are
    # logged as failed loads; anything else (a CSP violation, a script error) is a failure
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and "Failed to load resource" not in e["message"]]
    assert errors == [], errors  # no CSP violation, no script error
    assert time.monotonic() - started < 120
