"""Load on the live broker: N simulated agents putting offers concurrently, optionally while
planning rounds run over a queue of jobs (loopback; SQLite, or PostgreSQL with ``--db``).

Starts ``carbonfed serve`` on a fresh SQLite file (or a fresh schema of the PostgreSQL server
given by ``--db postgresql://...``) on 127.0.0.1, enrols and registers N sites, then every
agent puts ``--rounds`` offers with growing sequence numbers, one every ``--interval-s`` seconds
(each agent starts at a random phase, as real agents would), each on a keep-alive connection of
its own (``--client``: bare asyncio streams by default, so that the load generator, which shares
the broker's cores, costs little; ``httpx`` gives every agent an httpx client as
``carbonfed agent`` has; ``shared`` one httpx client for all).
Every fifth offer is followed by a replay of an older sequence, which must be refused (409).

Prints requests per second, p50/p99 latency of the offer PUTs, and:
  lost updates:            accepted offers whose sequence is not the site's stored one at the
                           end (the last accepted offer of every site must be the stored one);
  stale overwrites:        replays of an older sequence that were accepted.
With ``--queued-jobs J --plan-interval-s P`` it first queues J jobs and the broker plans every
P s during the load; it then also prints the rounds seen, jobs assigned per round (min, median,
max), the rounds that assigned nothing while jobs were queued, each round's time, the sites
its starts went to and its gap, and duplicated jobs (a job with more than one live assignment;
must be 0). Every run also prints
the load average before and after, the CPU time the broker's API process, its planning worker
and the load generator used during the load (all on the same cores), how late the load
generator's event loop ran (a delay in every latency it measures), and the share of CPU time
the hypervisor stole from this virtual machine.
With ``--attackers N`` issue 25's attackers (bench/attackers.py: half post 1 MB bodies with no
token, half are enrolled sites posting bad 1,000-job batches) run throughout the load, in a
process of their own; it also prints what each kind sent and the status codes it got.
With ``--compare-attackers`` they attack and pause in turns of ``--turn-s`` seconds: the
offers sent while they attack and those sent while they pause, on the same broker under the
same machine load, give two p99s and their ratio (two runs one after the other differed by
up to 5x with no attacker at all, the machine's other work coming and going).

    python bench/api_load.py                 # N = 20 and 200, 10 rounds, an offer every 5 s
    python bench/api_load.py --agents 200 --rounds 20 --interval-s 0.5
    python bench/api_load.py --interval-s 0  # closed loop: as fast as the server answers
    python bench/api_load.py --agents 1000 --queued-jobs 2000 --plan-interval-s 10 \
        --rounds 12                          # issue 12's run (add --db postgresql://... too)
    python bench/api_load.py --agents 200 --queued-jobs 5000 --plan-interval-s 10 \
        --rounds 12                          # issue 22's: rounds over 200 sites, 5,000 jobs
    python bench/api_load.py --agents 1000 --rounds 24 --attackers 4 --compare-attackers
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import attackers  # bench/attackers.py: this script's folder is on sys.path
import httpx
import numpy as np

from sites.agent import KEEPALIVE_S

ADMIN = "bench-admin-token-0123456789-abcdefghijklmnopqrstuvwxyz-ABCDEF"
V100_STEPS_PER_S = 4.394774823323071  # resnet50 on a V100
HOST = "127.0.0.1"
SLOTS = 24


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def process_cpu_s(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of a process and of each of its live child processes (the
    planner worker), from /proc (Linux; empty elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK")

    def one(p: int) -> float:
        fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick  # utime, stime

    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        return {"broker": one(pid), **{f"child {c}": one(int(c)) for c in children}}
    except OSError:
        return {}


def cpu_ticks() -> tuple[int, int]:
    """The machine's (all, stolen) CPU ticks so far, from /proc/stat (Linux; zeros elsewhere).
    Steal is time a virtual machine's CPUs were runnable but the hypervisor ran someone else:
    on the development VM it reached 15-29% for seconds at a time, and every latency then
    grew, whatever the broker did."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0, 0
    return sum(fields[:8]), fields[7]  # user nice system idle iowait irq softirq steal


def stolen_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    total = after[0] - before[0]
    return (after[1] - before[1]) / total if total else 0.0


def cpu_report(before: dict[str, float], after: dict[str, float], bench_s: float,
               requests: int) -> str:
    """Where the CPU went during the load: the broker's API process, its planner worker (a
    child process, if any), and this load generator."""
    used = {k: v - before.get(k, 0.0) for k, v in after.items()}
    parts = [f"{k} {v:.1f} s" for k, v in used.items()] + [f"load generator {bench_s:.1f} s"]
    per = (used.get("broker", 0.0) / requests * 1000) if requests else 0.0
    return (f"CPU during the load: {', '.join(parts)}; broker API process {per:.2f} ms per "
            f"request (rounds on the planning thread included when they run there)")


def offer(sequence: int, rng: np.random.Generator) -> dict:
    return {"sequence": sequence, "slot_h": 1.0,
            "free_gpus": {"V100": rng.integers(0, 9, SLOTS).tolist()},
            "price_usd_per_mwh": rng.uniform(20, 120, SLOTS).round(2).tolist(),
            "carbon_g_per_kwh": rng.uniform(20, 700, SLOTS).round(1).tolist()}


class RawConnection:
    """One agent's keep-alive HTTP/1.1 connection, on bare asyncio streams.

    httpx costs about 2.5 ms of CPU a request, as much as the broker spends answering it: at
    1,000 agents the load generator took half of one of the machine's two cores from the
    broker, and its busy event loop delayed the answers it timed. Real agents run elsewhere.
    This client writes the request and reads the status, headers and ``content-length`` body
    (what uvicorn sends), reconnecting if the broker closed the idle connection.
    """

    def __init__(self, host: str, port: int, token: str) -> None:
        self.host, self.port = host, port
        self.head = f"Host: {host}:{port}\r\nAuthorization: Bearer {token}\r\n" \
                    "Content-Type: application/json\r\n"
        self.streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def put(self, path: str, body: dict) -> int:
        data = json.dumps(body).encode()
        request = (f"PUT {path} HTTP/1.1\r\n{self.head}Content-Length: {len(data)}\r\n\r\n"
                   .encode() + data)
        for attempt in (0, 1):  # a connection the broker closed while idle: once more, anew
            if self.streams is None:
                self.streams = await asyncio.open_connection(self.host, self.port)
            reader, writer = self.streams
            try:
                writer.write(request)
                status, close = await attackers.read_answer(reader)  # EOF: IncompleteReadError
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
                continue
            if close:
                self.close()
            return status
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.streams is not None:
            self.streams[1].close()
            self.streams = None


Put = Callable[[str, dict], Awaitable[int]]  # (path, JSON body) -> HTTP status
CLIENTS = {
    "raw": "a keep-alive connection per agent on bare asyncio streams (cheapest to generate)",
    "httpx": "an httpx client per agent, as the agent has (its keep-alive, --keepalive-s)",
    "shared": "one httpx client and pool of N connections for all agents",
}


def httpx_put(client: httpx.AsyncClient, token: str) -> Put:
    headers = {"Authorization": f"Bearer {token}"}

    async def put(path: str, body: dict) -> int:
        return (await client.put(path, json=body, headers=headers)).status_code

    return put


async def one_agent(put: Put, site: str, rounds: int, interval_s: float, seed: int,
                    latencies: list[tuple[float, float]], outcome: dict) -> None:
    rng = np.random.default_rng(seed)
    await asyncio.sleep(rng.uniform(0, interval_s))
    for sequence in range(1, rounds + 1):
        begun = time.perf_counter()
        try:
            status = await put(f"/v1/sites/{site}/offer", offer(sequence, rng))
        except (httpx.TransportError, OSError, asyncio.IncompleteReadError):
            # a failure counts as an error (and its wait as latency)
            latencies.append((begun, time.perf_counter() - begun))
            outcome["errors"] += 1
            continue
        latencies.append((begun, time.perf_counter() - begun))
        if status == 200:
            outcome["accepted"][site] = sequence
        else:
            outcome["errors"] += 1
        if sequence % 5 == 0 and sequence > 1:  # a late duplicate of an older offer
            begun = time.perf_counter()
            status = await put(f"/v1/sites/{site}/offer", offer(sequence - 1, rng))
            latencies.append((begun, time.perf_counter() - begun))
            outcome["stale_overwrites"] += status == 200
            outcome["errors"] += status not in (200, 409)
        await asyncio.sleep(max(0.0, interval_s - (time.perf_counter() - begun)))


async def watch_loop_lag(lags_ms: list[float], stop: asyncio.Event) -> None:
    """How late this load generator's event loop wakes a 10 ms sleep: a busy generator adds
    that delay to every latency it measures, which would be charged to the broker."""
    while not stop.is_set():
        begun = time.perf_counter()
        await asyncio.sleep(0.01)
        lags_ms.append((time.perf_counter() - begun - 0.01) * 1000)


async def latest_round_id(admin: httpx.AsyncClient) -> int:
    r = await admin.get("/v1/plans/latest", headers={"Authorization": f"Bearer {ADMIN}"})
    return r.json()["round_id"] if r.status_code == 200 else 0


async def watch_rounds(admin: httpx.AsyncClient, seen: dict[int, dict],
                       stop: asyncio.Event) -> None:
    """Every planning round the broker runs during the load (polled twice a second); not
    those it ran before the load, while sites were registering and had offered nothing."""
    headers = {"Authorization": f"Bearer {ADMIN}"}
    before = await latest_round_id(admin)
    while not stop.is_set():
        r = await admin.get("/v1/plans/latest", headers=headers)
        plan = r.json() if r.status_code == 200 else None
        if plan is not None and plan["round_id"] > before:
            seen[plan["round_id"]] = plan
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.5)


async def queue_jobs(admin: httpx.AsyncClient, sites: list[str], n: int) -> None:
    headers = {"Authorization": f"Bearer {ADMIN}"}
    rng = np.random.default_rng(1)
    jobs = [{"id": f"job{i:05d}", "home_site": sites[i % len(sites)], "job_type": "resnet50",
             "gpus": int(rng.integers(1, 3)),
             "work_steps": float(V100_STEPS_PER_S * 3600 * rng.uniform(0.5, 6)),
             "dataset_gb": float(rng.uniform(0, 5))} for i in range(n)]
    for k in range(0, n, 1000):
        r = await admin.post("/v1/jobs/batch", json={"jobs": jobs[k:k + 1000]}, headers=headers)
        r.raise_for_status()


def duplicates(db_url: str) -> int:
    """Jobs with more than one live assignment, read from the database once the broker has
    stopped (reading site by site through the API while rounds still run would count a job
    requeued and reassigned between two reads twice)."""
    from sqlalchemy import text

    from api.db import make_engine

    engine = make_engine(db_url)
    with engine.connect() as c:
        n = c.execute(text(
            "SELECT count(*) FROM (SELECT job_id FROM assignments WHERE status IN "
            "('assigned', 'acknowledged', 'running', 'completed') GROUP BY job_id "
            "HAVING count(*) > 1) AS twice")).scalar()
    engine.dispose()
    return int(n or 0)


async def run_load(url: str, n_agents: int, rounds: int, interval_s: float,
                   client: str = "raw", queued_jobs: int = 0,
                   broker_cpu: Callable[[], dict[str, float]] = dict,
                   keepalive_s: float = KEEPALIVE_S, n_attackers: int = 0,
                   turn_s: float | None = None) -> dict:
    # One client shared by N agents scans its N-connection pool on every request (httpcore):
    # at N = 200 that is milliseconds of the load generator's CPU per request.
    limits = httpx.Limits(max_connections=n_agents, max_keepalive_connections=n_agents)
    async with contextlib.AsyncExitStack() as stack:
        admin = await stack.enter_async_context(
            httpx.AsyncClient(base_url=url, limits=limits, timeout=60))
        tokens = {}
        headers = {"Authorization": f"Bearer {ADMIN}"}
        for i in range(n_agents):  # enrolment is closed: the admin enrols, the site registers
            site = f"bench-{n_agents}-{i:04d}"
            r = await admin.post("/v1/enrolments", json={"id": site, "zone": "z",
                                                         "gpus": {"V100": 8}}, headers=headers)
            r.raise_for_status()
            once = r.json()["enrolment_token"]
            r = await admin.post("/v1/sites", json={"id": site, "zone": "z",
                                                    "gpus": {"V100": 8}},
                                 headers={"Authorization": f"Bearer {once}"})
            r.raise_for_status()
            tokens[site] = r.json()["token"]
        if queued_jobs:
            await queue_jobs(admin, list(tokens), queued_jobs)
        puts: dict[str, Put] = {}
        if client == "raw":
            address = httpx.URL(url)
            for site, token in tokens.items():
                connection = RawConnection(address.host, address.port or 80, token)
                stack.callback(connection.close)
                puts[site] = connection.put
        elif client == "httpx":
            tls = ssl.create_default_context()  # plain http; one context, not N (~20 ms each)
            for site, token in tokens.items():
                puts[site] = httpx_put(await stack.enter_async_context(httpx.AsyncClient(
                    base_url=url, timeout=60, verify=tls,
                    limits=httpx.Limits(keepalive_expiry=keepalive_s))), token)
        else:
            puts = {site: httpx_put(admin, token) for site, token in tokens.items()}
        latencies: list[tuple[float, float]] = []  # (sent at, seconds to the answer)
        outcome = {"accepted": {}, "errors": 0, "stale_overwrites": 0}
        # No garbage collection in the load generator while it measures: its passes (up to
        # 230 ms over the N clients and the growing list of latencies) stalled every request
        # in flight and counted as broker latency. A minute of garbage fits in memory.
        gc.collect()
        gc.disable()
        seen: dict[int, dict] = {}
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch_rounds(admin, seen, stop))
        lags_ms: list[float] = []
        lag_watcher = asyncio.create_task(watch_loop_lag(lags_ms, stop))
        attack = attackers.Attack(url, ADMIN, n_attackers, alternate_s=turn_s)
        stack.push_async_callback(attack.stop)
        await attack.start()  # its sites enrolled: it runs from here to the agents' end
        begun = time.perf_counter()
        cpu_before, bench_before = broker_cpu(), time.process_time()
        steal_before = cpu_ticks()
        try:
            await asyncio.gather(*(one_agent(puts[site], site, rounds, interval_s, i, latencies,
                                             outcome) for i, site in enumerate(tokens)))
        finally:
            await attack.stop()
            stop.set()
            await watcher
            await lag_watcher
            gc.enable()
        wall_s = time.perf_counter() - begun
        cpu_after, bench_s = broker_cpu(), time.process_time() - bench_before
        steal = stolen_share(steal_before, cpu_ticks())
        stored = {s["id"]: s["offer_sequence"] for s in (await admin.get(
            "/v1/sites", headers={"Authorization": f"Bearer {ADMIN}"})).json()}
    lost = sum(stored.get(site) != seq for site, seq in outcome["accepted"].items())
    lost += n_agents - len(outcome["accepted"])
    sent = np.array([t for t, _ in latencies]) - begun
    ms = np.array([seconds for _, seconds in latencies]) * 1000
    # p99 per 10 s window of sending: a tail at the start (every agent opening its connection
    # at once) reads differently from one that recurs with the planning rounds.
    windows = [ms[(sent >= w) & (sent < w + 10)] for w in range(0, int(wall_s) + 1, 10)]
    return {"agents": n_agents, "requests": len(latencies), "wall_s": wall_s,
            "rps": len(latencies) / wall_s, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)), "max_ms": float(ms.max()),
            "p99_by_10s_ms": [float(np.percentile(w, 99)) for w in windows if len(w)],
            "loop_lag_p99_ms": float(np.percentile(lags_ms, 99)),
            "loop_lag_max_ms": float(max(lags_ms)), "steal": steal,
            "errors": outcome["errors"], "lost_updates": lost,
            "stale_overwrites": outcome["stale_overwrites"], "sent_s": sent, "latency_ms": ms,
            "cpu": cpu_report(cpu_before, cpu_after, bench_s, len(latencies)), "rounds": sorted(
                seen.values(), key=lambda p: p["round_id"]), "attack": attack.result,
            "attacking": np.array(attack.attacking_at([t for t, _ in latencies]), dtype=bool),
            "switches": [(t - begun, on) for t, on in attack.switches]}


def wait_healthy(url: str, server: subprocess.Popen) -> None:
    ends = time.monotonic() + 30
    while time.monotonic() < ends:
        if server.poll() is not None:
            raise SystemExit("the broker exited; see its output above")
        try:
            if httpx.get(f"{url}/v1/health").status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise SystemExit("the broker did not come up within 30 s")


def load_average() -> str:
    """The machine's 1, 5 and 15 min load averages (2 cores: above 2 means waiting for CPU)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_rounds(r: dict) -> None:
    rounds = [p for p in r["rounds"] if p["queued"] > 0]
    assigned = [len(p["assigned"]) for p in rounds]
    if not rounds:
        print("no planning round saw queued jobs during the load")
        return
    print(f"rounds {len(rounds)}: assigned per round min {min(assigned)}, median "
          f"{int(np.median(assigned))}, max {max(assigned)}; rounds assigning nothing "
          f"{sum(a == 0 for a in assigned)}")
    for p in rounds:
        elapsed = p.get("elapsed_s") or 0.0
        sites = {s["site_id"] for s in p.get("planned", ()) if s["start_offset"] == 0}
        gap = "-" if p.get("gap") is None else f"{p['gap']:.1%}"
        print(f"  round {p['round_id']}: queued {p['queued']}, considered {p['considered']}, "
              f"assigned {len(p['assigned'])} at {len(sites)} sites, {p['status']}, gap {gap}, "
              f"{p['n_options']} options, {elapsed:.2f} s")


@contextlib.contextmanager
def database(url: str | None, tmp: Path):
    """A fresh SQLite file, or a fresh schema on the given PostgreSQL server (dropped after)."""
    if url is None:
        yield f"sqlite:///{tmp / 'bench.db'}"
        return
    from api.db import postgres_schema

    with postgres_schema(url, "carbonfed_bench") as scoped:
        yield scoped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--agents", type=int, nargs="+", default=[20, 200])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--interval-s", type=float, default=5.0,
                        help="seconds between one agent's offers (agents default to 5)")
    parser.add_argument("--client", choices=CLIENTS, default="raw",
                        help="how agents send: " + "; ".join(f"{k}: {v}" for k, v in
                                                            CLIENTS.items()))
    parser.add_argument("--queued-jobs", type=int, default=0,
                        help="jobs queued before the load (planning rounds then run over them)")
    parser.add_argument("--plan-interval-s", type=float,
                        help="the broker plans on this schedule during the load")
    parser.add_argument("--no-planner-process", action="store_true",
                        help="the broker solves rounds on its planning thread (default: in its "
                        "worker process), to compare")
    parser.add_argument("--keepalive-s", type=float, default=KEEPALIVE_S,
                        help="how long an agent's idle connection is kept (default: as "
                        "carbonfed agent keeps it; 5 is httpx's default)")
    parser.add_argument("--latencies-csv", type=Path, metavar="FILE",
                        help="also write every offer's latency (agents, sent_s: seconds into "
                        "the load, latency_ms) to FILE, to plot or cut finer than 10 s")
    parser.add_argument("--attackers", type=int, default=0,
                        help="issue 25's attackers running throughout the load (half no-token "
                        "1 MB bodies, half bad 1,000-job batches; bench/attackers.py)")
    parser.add_argument("--compare-attackers", action="store_true",
                        help="the attackers attack and pause in turns: the honest p99 while "
                        "they attack, while they pause, and the ratio")
    parser.add_argument("--turn-s", type=float, default=10.0,
                        help="with --compare-attackers, seconds of each turn (default 10)")
    parser.add_argument("--db", help="postgresql://... to run on a fresh schema of that "
                        "server (default: a fresh SQLite file)")
    args = parser.parse_args()
    if args.latencies_csv is not None and not args.latencies_csv.parent.is_dir():
        parser.error(f"--latencies-csv: folder {args.latencies_csv.parent} does not exist")
    if args.attackers < 0 or (args.compare_attackers and args.attackers < 1):
        parser.error(f"--attackers: must be at least {1 if args.compare_attackers else 0} "
                     f"(with --compare-attackers, the attackers to compare with), got "
                     f"{args.attackers}")
    if args.turn_s <= 0:
        parser.error(f"--turn-s: must be positive, got {args.turn_s}")
    with tempfile.TemporaryDirectory() as tmp, database(args.db, Path(tmp)) as db:
        port = free_port()
        url = f"http://{HOST}:{port}"
        flags = ["--plan-interval-s", str(args.plan_interval_s)] if args.plan_interval_s else []
        flags += ["--no-planner-process"] if args.no_planner_process else []
        server = subprocess.Popen(
            [sys.executable, "-m", "scenarios.cli", "serve", "--db", db, "--host", HOST,
             "--port", str(port), *flags],
            env={**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN}, stdout=subprocess.DEVNULL,
        )
        try:
            wait_healthy(url, server)
            print(f"offers of {SLOTS} slots, {args.rounds} rounds per agent, one every "
                  f"{args.interval_s} s; "
                  f"{CLIENTS[args.client]}; "
                  f"{'PostgreSQL' if args.db else 'SQLite (WAL)'}; {args.queued_jobs} jobs "
                  f"queued, planning every {args.plan_interval_s or '-'} s"
                  f"{' on the API process' if args.no_planner_process else ''}")
            print(f"{'agents':>6} {'requests':>8} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} "
                  f"{'max ms':>7} {'errors':>6} {'lost':>5} {'stale overwrites':>16}")
            rows = []  # (agents, sent_s, latency_ms) for --latencies-csv
            for n in args.agents:
                print(f"load average before: {load_average()}")
                r = asyncio.run(run_load(url, n, args.rounds, args.interval_s,
                                         args.client, args.queued_jobs,
                                         lambda: process_cpu_s(server.pid),
                                         args.keepalive_s, args.attackers,
                                         args.turn_s if args.compare_attackers else None))
                print(f"{r['agents']:>6} {r['requests']:>8} {r['rps']:>7.1f} "
                      f"{r['p50_ms']:>7.1f} {r['p99_ms']:>7.1f} {r['max_ms']:>7.1f} "
                      f"{r['errors']:>6} {r['lost_updates']:>5} {r['stale_overwrites']:>16}")
                print("p99 ms per 10 s of sending: "
                      + ", ".join(f"{v:.0f}" for v in r["p99_by_10s_ms"]))
                print(f"load generator's event-loop lag (in every latency above): p99 "
                      f"{r['loop_lag_p99_ms']:.0f} ms, max {r['loop_lag_max_ms']:.0f} ms; "
                      f"CPU stolen by the hypervisor: {r['steal']:.1%}")
                print(f"load wall {r['wall_s']:.1f} s; {r['cpu']}; load average after: "
                      f"{load_average()}")
                if args.queued_jobs:
                    print_rounds(r)
                if args.attackers:
                    print(attackers.report(r["attack"]))
                if args.compare_attackers:
                    print(attackers.compare(r["latency_ms"], r["attacking"], args.turn_s))
                rows += [(n, sent, ms)
                         for sent, ms in zip(r["sent_s"], r["latency_ms"], strict=True)]
            if args.latencies_csv:
                args.latencies_csv.write_text("agents,sent_s,latency_ms\n" + "".join(
                    f"{n},{sent:.4f},{ms:.3f}\n" for n, sent, ms in rows))
        finally:
            server.terminate()
            server.wait(timeout=30)
        if args.queued_jobs:
            print(f"jobs with more than one live or completed assignment: {duplicates(db)}")


if __name__ == "__main__":
    main()
