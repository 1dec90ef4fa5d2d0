"""Real processes: an agent killed with SIGKILL loses its leases, its running jobs are requeued
and finished at another site exactly once, and its late completion gets 409; a 200 MB body
gets 413 without the broker's memory growing.
"""

from __future__ import annotations

import json
import os
import select
import socket
import time
from pathlib import Path

import httpx

from tests.api.processes import (
    ADMIN,
    HOST,
    V100_STEPS_PER_S,
    agent_config,
    carbonfed,
    enrol,
    free_port,
    kill,
    wait_for,
)

SITES = [  # the doomed site is cheaper, so the jobs go there first
    {"id": "doomed", "zone": "cheap", "pue": 1.1, "gpus": {"V100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 30},
                 "price_usd_per_mwh": {"kind": "constant", "value": 10}}},
    {"id": "backup", "zone": "dear", "pue": 1.1, "gpus": {"V100": 2},
     "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 30},
                 "price_usd_per_mwh": {"kind": "constant", "value": 90}}},
]


def start_broker(tmp_path: Path, started: list, db_url: str,
                 *flags: str) -> tuple[str, dict[str, str]]:
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN, "CARBONFED_HORIZON_SLOTS": "6"}
    started.append(carbonfed("serve", "--db", db_url,
                             "--host", HOST, "--port", str(port), *flags, env=env,
                             log=tmp_path / "broker.log"))
    wait_for(lambda: httpx.get(f"{url}/v1/health").status_code == 200, "the broker", started)
    return url, env


def test_a_killed_agents_running_jobs_finish_elsewhere_exactly_once(tmp_path, processes,
                                                                    db_url):
    url, env = start_broker(tmp_path, processes, db_url, "--plan-interval-s", "0.3", "--time-scale",
                            "3600", "--stale-after-s", "1.5", "--ack-timeout-s", "2",
                            "--lease-s", "2.5", "--solver-time-limit-s", "5")
    admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"}, timeout=10)
    agents = {}
    for site in SITES:
        token = enrol(site, url, env)
        path = agent_config(site, tmp_path)
        agents[site["id"]] = carbonfed("agent", str(path), "--broker", url, "--enrolment-token",
                                       token, env=env, log=tmp_path / f"{site['id']}.log")
        processes.append(agents[site["id"]])
    wait_for(lambda: all(s["status"] == "active" for s in admin.get("/v1/sites").json()),
             "both sites offering", processes)
    # 6 simulated hours on a V100: 6 s of real time at 3600x
    jobs = [{"id": f"long{i}", "home_site": "backup", "job_type": "resnet50", "gpus": 1,
             "work_steps": V100_STEPS_PER_S * 3600.0 * 6} for i in range(2)]
    assert admin.post("/v1/jobs/batch", json={"jobs": jobs}).status_code == 201

    def running_at_doomed() -> bool:
        states = [admin.get(f"/v1/jobs/{j['id']}").json() for j in jobs]
        return all(s["status"] == "running" and s["site_id"] == "doomed" for s in states)

    wait_for(running_at_doomed, "both jobs running at the doomed site", processes)
    doomed = admin.get("/v1/sites/doomed/assignments").json()["assignments"]
    kill(agents["doomed"])  # SIGKILL: no goodbye, no completion
    processes.remove(agents["doomed"])

    def completed() -> bool:
        return all(admin.get(f"/v1/jobs/{j['id']}").json()["status"] == "completed"
                   for j in jobs)

    wait_for(completed, "the jobs to finish at the backup site", processes, timeout_s=60)
    done = admin.get("/v1/sites/backup/assignments", params={"status": "completed"}).json()
    assert sorted(a["job"]["id"] for a in done["assignments"]) == ["long0", "long1"]
    summary = admin.get("/v1/summary").json()
    assert summary["jobs"] == {"completed": 2}
    assert {s["site_id"]: s["jobs_completed"] for s in summary["by_site"]} == {
        "doomed": 0, "backup": 2}
    withdrawn = admin.get("/v1/sites/doomed/assignments",
                          params={"status": "requeued"}).json()["assignments"]
    assert {a["id"] for a in withdrawn} >= {a["id"] for a in doomed}
    assert {a["requeue_reason"] for a in withdrawn if a["id"] in {d["id"] for d in doomed}} == {
        "lease-expired"}
    # the dead agent's token still names the site (it was never disabled): its late
    # completion is refused and recorded
    state = json.loads((tmp_path / "doomed.state.json").read_text())
    assert oct(os.stat(tmp_path / "doomed.state.json").st_mode & 0o777) == "0o600"
    late = httpx.post(f"{url}/v1/sites/doomed/assignments/{doomed[0]['id']}/complete",
                      headers={"Authorization": f"Bearer {state['token']}"})
    assert late.status_code == 409
    after = admin.get("/v1/sites/doomed/assignments", params={"status": "requeued"}).json()
    [recorded] = [a for a in after["assignments"] if a["id"] == doomed[0]["id"]]
    assert recorded["late_completion_at_s"] is not None
    assert admin.get("/v1/summary").json()["jobs"] == {"completed": 2}


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_a_200_mb_body_gets_413_and_memory_stays_low(tmp_path, processes):
    url, _ = start_broker(tmp_path, processes, f"sqlite:///{tmp_path / 'broker.db'}")
    port = int(url.rsplit(":", 1)[1])
    size = 200 * 1024 * 1024
    answer = b""
    with socket.create_connection((HOST, port), timeout=10) as s:
        # with the admin's token: a request without one is refused before the size is looked
        # at (401, tests/api/test_hardening.py)
        s.sendall(f"POST /v1/jobs/batch HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: "
                  f"application/json\r\nAuthorization: Bearer {ADMIN}\r\n"
                  f"Content-Length: {size}\r\n\r\n".encode())
        # Send the body slowly and stop as soon as the broker answers: once it has answered
        # and closed, more body bytes would only make the kernel reset the connection and
        # throw the 413 away before we read it (a race seen under load).
        chunk, sent = b"[" * (64 * 1024), 0
        try:
            while sent < size and not select.select([s], [], [], 0.05)[0]:
                s.sendall(chunk)
                sent += len(chunk)
            ends = time.monotonic() + 10
            while b"\r\n\r\n" not in answer and time.monotonic() < ends:
                data = s.recv(65536)
                if not data:
                    break
                answer += data
        except (BrokenPipeError, ConnectionResetError):
            pass
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert sent < size  # refused long before the body was all sent
    assert peak_rss_mb(processes[0].pid) < 300
    assert httpx.get(f"{url}/v1/health").status_code == 200  # and it serves on
