"""A real broker and a real agent: the broker pauses a running preemptible job over a carbon
spike it could not see when the job started, the agent stops it on the broker's word, and the
job resumes after the spike and completes (the ``simulate`` executor; an hour is a second).

North's grid is at 100 g/kWh but for a spike of 2000 g in hours 8 and 9; the broker looks six
hours ahead. A 12 h job starts at once (the spike is out of sight); when the spike comes, going
on through it costs about 0.7 kg of CO2 an hour (0.07 USD at the broker's 100 USD/t), pausing
0.2 h of overhead and a little delay: it pauses, and resumes when the spike has passed.
"""

from __future__ import annotations

from tests.api.federation import Federation, all_active, job, job_state, site

SPIKE = [100.0] * 8 + [2000.0] * 2 + [100.0] * 38  # hourly, from the broker's hour 0


def test_the_agent_pauses_and_resumes_a_job_on_the_brokers_word(tmp_path, processes):
    fed = Federation(tmp_path, processes)
    admin = fed.start()
    north = site("north", {"V100": 1})
    north["signals"]["carbon_g_per_kwh"] = {"kind": "hourly", "values": SPIKE}
    fed.add_site(north, {"kind": "simulate"})
    fed.wait(lambda: all_active(admin, 1), "north offering")
    body = {**job("long", None, hours=12.0, home="north"), "preemptible": True,
            "checkpoint_overhead_h": 0.1}
    assert admin.post("/v1/jobs", json=body).status_code == 201

    fed.wait(lambda: job_state(admin, "long")["status"] == "completed",
             "the job to complete", timeout_s=60)
    history = job_state(admin, "long")["history"]
    reasons = [h["requeue_reason"] for h in history]
    assert "paused" in reasons and history[-1]["status"] == "completed"
    assert "job long paused on the broker's word" in fed.log("north")
    # it paused in the spike and resumed after it, on the broker's clock (an hour a second)
    paused = next(h for h in history if h["requeue_reason"] == "paused")
    resumed = history[history.index(paused) + 1]
    assert resumed["started_at_s"] - paused["ended_at_s"] > 0.5  # it waited out the spike
