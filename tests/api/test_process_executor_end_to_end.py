"""A real broker, real agents, real jobs as local processes (the ``process`` executor).

Jobs are shell commands that write files in the test's folder: what they wrote is what ran.
"""

from __future__ import annotations

import json

import httpx

from tests.api.federation import (
    Federation,
    all_active,
    gated_run,
    job,
    job_state,
    sh,
    site,
)


def process_executor(tmp_path, **extra: object) -> dict:
    return {"kind": "process", "grace_s": 1.5, "work_dir": str(tmp_path / "jobs"),
            **extra}


def test_jobs_run_as_processes_complete_fail_elsewhere_and_are_refused_by_policy(
        tmp_path, processes):
    fed = Federation(tmp_path, processes)
    admin = fed.start()
    # north runs only `/bin/sh -c` commands; south anything
    # north has room for all three at once: each goes there first
    fed.add_site(site("north", {"V100": 4}),
                 process_executor(tmp_path / "north", accept={"command_prefixes": ["/bin/sh -c"]}))
    fed.add_site(site("south", {"V100": 2}), process_executor(tmp_path / "south"))
    fed.wait(lambda: all_active(admin, 2), "both sites offering")

    out = tmp_path / "out"
    out.mkdir()
    secret = "s3cr3t-value-0f-the-job"
    ok = sh(f'echo "$CUDA_VISIBLE_DEVICES $CARBONFED_JOB_ID $TOKEN" > {out}/ok; sleep 2',
            env={"TOKEN": secret})
    # fails where it runs first (leaving a mark), succeeds where it runs next
    flaky = sh(f'if [ ! -e {out}/mark ]; then touch {out}/mark; echo boom >&2; exit 1; fi; '
               f'echo "$(pwd)" > {out}/flaky')
    refused = {"command": ["python3", "-c", f"open('{out}/refused', 'w').write('ran')"]}
    jobs = [job("ok", ok), job("flaky", flaky), job("refused", refused)]
    assert admin.post("/v1/jobs/batch", json={"jobs": jobs}).status_code == 201

    def finished() -> bool:
        return all(job_state(admin, j["id"])["status"] == "completed" for j in jobs)

    fed.wait(finished, "all three jobs to complete", timeout_s=60)
    # ok: ran at north (the cheaper) with its GPU index, its id and its environment
    devices, job_id, token = (out / "ok").read_text().split()
    assert devices in ("0", "1", "2", "3") and job_id == "ok" and token == secret
    [ok_run] = job_state(admin, "ok")["history"]
    assert ok_run["site_id"] == "north" and ok_run["status"] == "completed"
    assert ok_run["run_ref"].isdigit()  # the pid
    # flaky: failed at north with its code and last lines, then ran at south
    history = job_state(admin, "flaky")["history"]
    assert [(h["site_id"], h["status"], h["exit_code"]) for h in history] == [
        ("north", "failed", 1), ("south", "completed", 0)]
    assert "exit code 1" in history[0]["message"] and "boom" in history[0]["message"]
    assert "/south/" in (out / "flaky").read_text()
    # refused: north's policy took no python3; south ran it
    history = job_state(admin, "refused")["history"]
    assert [(h["site_id"], h["requeue_reason"]) for h in history] == [
        ("north", "rejected"), ("south", None)]
    assert "does not start with an allowed prefix" in history[0]["message"]
    assert (out / "refused").read_text() == "ran"
    summary = admin.get("/v1/summary").json()
    assert {s["site_id"]: s["jobs_failed"] for s in summary["by_site"]} == {
        "north": 1, "south": 0}
    # the run spec: never in a log, never to another site
    for name in ("broker", "north", "south"):
        assert secret not in fed.log(name)
    south = (tmp_path / "south.state.json").read_text()
    r = httpx.get(f"{fed.url}/v1/sites/north/assignments",
                  headers={"Authorization": f"Bearer {json.loads(south)['token']}"})
    assert r.status_code == 403 and secret not in r.text


def test_a_cancelled_job_gets_sigterm_before_sigkill(tmp_path, processes):
    fed = Federation(tmp_path, processes)
    admin = fed.start()
    fed.add_site(site("north", {"V100": 1}), process_executor(tmp_path / "north"))
    fed.wait(lambda: all_active(admin, 1), "the site offering")
    out = tmp_path / "out"
    out.mkdir()
    # a preemptible job: on SIGTERM it writes its checkpoint, then ignores the signal
    stubborn = sh(f'trap "echo checkpoint > {out}/term" TERM; echo $$ > {out}/pid; '
                  f'while true; do sleep 0.1; done', checkpoint_dir=str(out))
    assert admin.post("/v1/jobs", json=job("j1", stubborn, home="north")).status_code == 201
    fed.wait(lambda: (out / "pid").exists() and job_state(admin, "j1")["status"] == "running",
             "the job running")
    pid = int((out / "pid").read_text())
    assert admin.post("/v1/jobs/j1/cancel").json()["status"] == "cancelled"

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[-1].split()[0] == "Z"
        except OSError:
            return True

    fed.wait(gone, "the job killed")
    assert (out / "term").read_text() == "checkpoint\n"  # SIGTERM reached it first
    assert "job j1 withdrawn by the broker (revoked): stopped" in fed.log("north")


def test_a_restarted_agent_re_adopts_its_running_process_and_nothing_runs_twice(
        tmp_path, processes):
    fed = Federation(tmp_path, processes)
    admin = fed.start("--lease-s", "60")
    fed.add_site(site("north", {"V100": 1}), process_executor(tmp_path / "north"))
    fed.wait(lambda: all_active(admin, 1), "the site offering")
    out = tmp_path / "out"
    out.mkdir()
    run = gated_run(out)
    assert admin.post("/v1/jobs", json=job("j1", run, home="north")).status_code == 201
    fed.wait(lambda: job_state(admin, "j1")["status"] == "running", "the job running")
    fed.restart_agent("north")
    (out / "go").touch()
    fed.wait(lambda: job_state(admin, "j1")["status"] == "completed", "the job completing")
    assert (out / "runs").read_text() == "started\ndone\n"  # once
    assert "job j1 re-adopted after a restart (assignment 1, run " in fed.log("north")
