"""The site agent's overhead on the Slurm path: N short jobs through one agent and one
real Slurm cluster (``.ci/slurm.sh``: one node, gpu:v100:4 and gpu:a100:2).

Starts ``carbonfed serve`` (time scale 3600) and one ``carbonfed agent`` with the ``slurm``
executor on loopback, submits ``--jobs`` jobs of ``--job-s`` seconds each (``sleep``), waits for
them all to complete, and prints, from the broker's database and Slurm:

  assigned -> running:   the broker's assignment to the agent's start report (median, p90,
                          max): the agent's ack and sbatch, Slurm's scheduling, the agent's next
                          squeue (poll interval) and its report;
  sbatch -> running:     Slurm's own submit -> start (1 s resolution);
  running -> completed:  the start report to the completion report, less the job's own run;
  agent CPU per job:     the agent process's user+system CPU, and that of the Slurm commands it
                         ran (reaped children), during the run, divided by the jobs, after the
                         idle agent's CPU over the same time is taken out.

    python bench/slurm_agent.py                # 200 jobs of 1 s
    python bench/slurm_agent.py --jobs 50 --job-s 0
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.api.processes import (  # noqa: E402
    ADMIN,
    HOST,
    V100_STEPS_PER_S,
    carbonfed,
    enrol,
    free_port,
    kill,
    wait_for,
)

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> tuple[float, float]:
    """(own user+system, reaped children's user+system) CPU seconds of ``pid``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(x) for x in fields[11:15])
    return (utime + stime) / TICKS, (cutime + cstime) / TICKS


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--job-s", type=float, default=1.0, help="each job sleeps this long")
    parser.add_argument("--poll-interval-s", type=float, default=0.5)
    parser.add_argument("--idle-s", type=float, default=10.0,
                        help="the idle agent's CPU is measured over this long first")
    args = parser.parse_args()
    conf = os.environ.get("SLURM_CONF") or subprocess.run(
        ["bash", str(ROOT / ".ci" / "slurm.sh")], capture_output=True, text=True).stdout.strip()
    if not conf:
        print("no Slurm here (.ci/slurm.sh could not start one)")
        return 1
    tmp = Path(tempfile.mkdtemp(prefix="carbonfed-slurm-bench-"))
    env = {**os.environ, "SLURM_CONF": conf, "CARBONFED_ADMIN_TOKEN": ADMIN,
           "CARBONFED_HORIZON_SLOTS": "6"}
    port = free_port()
    url = f"http://{HOST}:{port}"
    started: list[subprocess.Popen] = []
    site_id = f"bench{int(time.time()) % 100000}"  # Slurm keeps old names for an hour
    try:
        started.append(carbonfed(
            "serve", "--db", f"sqlite:///{tmp / 'broker.db'}", "--host", HOST, "--port",
            str(port), "--plan-interval-s", "0.3", "--time-scale", "3600", "--stale-after-s",
            "10", "--solver-time-limit-s", "5", env=env, log=tmp / "broker.log"))
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN}"},
                             timeout=30)
        wait_for(lambda: admin.get("/v1/health").status_code == 200, "the broker", started)
        site = {"id": site_id, "zone": "bench", "pue": 1.2, "gpus": {"V100": 4, "A100": 2},
                "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 100},
                            "price_usd_per_mwh": {"kind": "constant", "value": 50}}}
        token = enrol(site, url, env)
        config = {"site": {k: site[k] for k in ("id", "zone", "pue", "gpus")},
                  "signals": site["signals"], "slot_h": 1, "horizon_slots": 6,
                  "offer_interval_s": 0.5, "poll_interval_s": args.poll_interval_s,
                  "time_scale": 3600,
                  "executor": {"kind": "slurm", "work_dir": str(tmp / "jobs")}}
        path = tmp / "agent.yaml"
        path.write_text(yaml.safe_dump(config))
        agent = carbonfed("agent", str(path), "--broker", url, "--enrolment-token", token,
                          env=env, log=tmp / "agent.log")
        started.append(agent)
        wait_for(lambda: admin.get(f"/v1/sites/{site_id}").json().get("status") == "active",
                 "the site offering", started)
        idle0 = cpu_s(agent.pid)
        time.sleep(args.idle_s)
        idle1 = cpu_s(agent.pid)
        idle_rate = ((idle1[0] - idle0[0]) / args.idle_s, (idle1[1] - idle0[1]) / args.idle_s)
        # expected run: the sleep, at 3600x (1 s = 1 simulated h)
        hours = max(args.job_s, 0.01)
        jobs = [{"id": f"b{i}", "home_site": site_id, "job_type": "resnet50", "gpus": 1,
                 "work_steps": V100_STEPS_PER_S * 3600.0 * hours,
                 "run": {"command": ["sleep", f"{args.job_s:g}"]}} for i in range(args.jobs)]
        begun = time.monotonic()
        cpu0 = cpu_s(agent.pid)
        for i in range(0, len(jobs), 500):
            assert admin.post("/v1/jobs/batch", json={"jobs": jobs[i:i + 500]}).status_code == 201

        def done() -> bool:
            return admin.get("/v1/jobs", params={"status": "completed"}).json().__len__() == len(
                jobs)

        wait_for(done, "every job to complete", started, timeout_s=3600)
        elapsed = time.monotonic() - begun
        cpu1 = cpu_s(agent.pid)
    finally:
        for p in started:
            kill(p)
    with sqlite3.connect(tmp / "broker.db") as db:
        rows = db.execute("SELECT created_at_s, started_at_s, completed_at_s, run_ref FROM "
                          "assignments WHERE status = 'completed'").fetchall()
    to_run = [s - c for c, s, _, _ in rows]
    to_done = [e - s - args.job_s for _, s, e, _ in rows]
    refs = {str(r[3]) for r in rows}
    slurm = json.loads(subprocess.run(["squeue", "--json"], capture_output=True, text=True,
                                      env=env, check=True).stdout)["jobs"]
    sbatch_to_run = [j["start_time"] - j["submit_time"] for j in slurm
                     if str(j["job_id"]) in refs]
    own = cpu1[0] - cpu0[0] - idle_rate[0] * elapsed
    children = cpu1[1] - cpu0[1] - idle_rate[1] * elapsed
    n = len(rows)
    print(f"{n} jobs of {args.job_s:g} s through one agent (slurm executor, poll every "
          f"{args.poll_interval_s:g} s; 6 GPUs): {elapsed:.1f} s")
    print(f"assigned -> running   median {statistics.median(to_run):.2f} s, p90 "
          f"{pct(to_run, 0.9):.2f} s, max {max(to_run):.2f} s")
    if sbatch_to_run:
        print(f"sbatch -> running     median {statistics.median(sbatch_to_run):.0f} s, max "
              f"{max(sbatch_to_run):.0f} s (Slurm's clock, 1 s resolution; "
              f"{len(sbatch_to_run)} jobs still in squeue)")
    print(f"running -> completed  median {statistics.median(to_done):.2f} s beyond the run, "
          f"max {max(to_done):.2f} s")
    print(f"agent CPU per job     {1000 * own / n:.1f} ms own + {1000 * children / n:.1f} ms "
          f"Slurm commands (idle agent: {1000 * idle_rate[0]:.1f} + "
          f"{1000 * idle_rate[1]:.1f} ms per s, taken out)")
    print(f"logs and database in {tmp}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
