"""A real broker and real agents with real executors, for the executor end-to-end tests.

``Federation`` starts ``carbonfed serve`` (time scale 3600: a simulated hour is a real second)
and, per site, ``carbonfed agent`` with the ``executor:`` section a test gives; every process
is killed by the ``processes`` fixture. Every wait has a deadline.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
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

PRICES = {"north": 10, "south": 90}  # north is the cheaper: jobs go there first


def site(site_id: str, gpus: dict[str, int], price: float | None = None) -> dict:
    price = PRICES.get(site_id, 50) if price is None else price
    return {"id": site_id, "zone": f"zone-{site_id}", "pue": 1.2, "gpus": gpus,
            "signals": {"carbon_g_per_kwh": {"kind": "constant", "value": 100},
                        "price_usd_per_mwh": {"kind": "constant", "value": price}}}


def job(job_id: str, run: dict | None, hours: float = 1.0, home: str = "south",
        gpu_type: str = "V100") -> dict:
    body = {"id": job_id, "home_site": home, "job_type": "resnet50", "gpus": 1,
            "work_steps": V100_STEPS_PER_S * 3600.0 * hours}
    return body if run is None else {**body, "run": run}


def sh(script: str, **extra: object) -> dict:
    """A run spec: ``script`` through ``/bin/sh -c``."""
    return {"command": ["/bin/sh", "-c", script], **extra}


def gated_run(out: Path) -> dict:
    """A run that records its start in ``out/runs``, waits for ``out/go``, then records its
    end: what it wrote is how often it ran."""
    return sh(f'echo started >> {out}/runs; while [ ! -e {out}/go ]; do sleep 0.1; done; '
              f'echo done >> {out}/runs')


@dataclass
class Federation:
    tmp_path: Path
    processes: list[subprocess.Popen]
    url: str = ""
    env: dict[str, str] = field(default_factory=dict)
    agents: dict[str, subprocess.Popen] = field(default_factory=dict)
    configs: dict[str, Path] = field(default_factory=dict)

    def start(self, *flags: str) -> httpx.Client:
        port = free_port()
        self.url = f"http://{HOST}:{port}"
        self.env = {**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN,
                    "CARBONFED_HORIZON_SLOTS": "6"}
        self.processes.append(carbonfed(
            "serve", "--db", f"sqlite:///{self.tmp_path / 'broker.db'}", "--host", HOST,
            "--port", str(port), "--plan-interval-s", "0.3", "--time-scale", "3600",
            "--stale-after-s", "5", "--solver-time-limit-s", "5", *flags, env=self.env,
            log=self.tmp_path / "broker.log"))
        admin = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {ADMIN}"},
                             timeout=10)
        wait_for(lambda: admin.get("/v1/health").status_code == 200, "the broker",
                 self.processes)
        return admin

    def add_site(self, spec: dict, executor: dict) -> None:
        token = enrol(spec, self.url, self.env)
        self.configs[spec["id"]] = agent_config(spec, self.tmp_path, executor=executor)
        self.configs[spec["id"]].with_suffix(".token").write_text(token)
        self.run_agent(spec["id"])

    def run_agent(self, site_id: str) -> subprocess.Popen:
        token = self.configs[site_id].with_suffix(".token").read_text()
        agent = carbonfed("agent", str(self.configs[site_id]), "--broker", self.url,
                          "--enrolment-token", token, env=self.env,
                          log=self.tmp_path / f"{site_id}.log")
        self.agents[site_id] = agent
        self.processes.append(agent)
        return agent

    def kill_agent(self, site_id: str) -> None:
        agent = self.agents.pop(site_id)
        kill(agent)  # SIGKILL: the agent's jobs run on without it
        self.processes.remove(agent)

    def restart_agent(self, site_id: str) -> None:
        """SIGKILL the site's agent mid-job, start it again, and wait until it re-adopts."""
        self.kill_agent(site_id)
        self.run_agent(site_id)
        self.wait(lambda: "re-adopted" in self.log(site_id), "the agent re-adopting")

    def log(self, name: str) -> str:
        return (self.tmp_path / f"{name}.log").read_text()

    def wait(self, check, what: str, timeout_s: float = 45.0) -> None:
        wait_for(check, what, self.processes, timeout_s)


def job_state(admin: httpx.Client, job_id: str) -> dict:
    return admin.get(f"/v1/jobs/{job_id}").json()


def all_active(admin: httpx.Client, n: int) -> bool:
    listed = admin.get("/v1/sites").json()
    return len(listed) == n and all(s["status"] == "active" for s in listed)
