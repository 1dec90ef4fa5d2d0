"""Attackers of issue 25's items 1-2, to run against a live broker while honest agents offer.

Two kinds, each as fast as the broker answers (one request in flight per attacker; the answer,
then at once the next request; Retry-After is ignored, as an attacker would):

  no-token    (item 1) ``POST /v1/sites`` without a token, a ~1 MB body of 60,000 unknown keys,
              on a new connection each time (the broker closes it after its refusal). Before
              the fix the body was parsed and validated on the event loop (1.1 s) and answered
              with 60,003 errors; now the gate answers 401 (or 429 once the address is over its
              rate) before reading it.
  bad-batch   (item 2) an enrolled site of its own posting ``POST /v1/jobs/batch`` with 1,000
              jobs of which the last has an unknown job type, on a keep-alive connection: 422,
              nothing stored (or 429 over the site's limits). Before the fix the batch was
              checked under the database's write lock, which every offer waited for.

``bench/api_load.py --attackers N`` runs N of them (the first half rounded up no-token, the
rest bad-batch) in a process of their own, as this script, so that their CPU and their 1 MB
writes do not delay the honest agents' event loop (whose delays would count as broker
latency); they still share the machine's cores with the broker, as the load generator does.

    CARBONFED_ADMIN_TOKEN=... python bench/attackers.py --url http://127.0.0.1:8000 \
        --attackers 4 [--seconds 10]

enrols the bad-batch sites (through the admin token, taken from the environment, never argv),
prints ``ready``, attacks until SIGTERM/SIGINT (or ``--seconds``), then prints one JSON line:
per kind, the attackers, the requests sent, the answers by status code ("reset": the
connection failed before an answer) and this process's CPU seconds.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import json
import os
import signal
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import httpx
import numpy as np

UNKNOWN_KEYS = 60_000  # issue 25 item 1: ~1 MB of keys no schema knows
BATCH_JOBS = 1000  # issue 25 item 2, and the broker's default max_batch_jobs
V100_STEPS_PER_S = 4.394774823323071  # resnet50 on a V100
RESET = "reset"  # the connection failed before an answer came
NO_TOKEN, BAD_BATCH = "no-token", "bad-batch"  # the kinds
PAUSE, RESUME = signal.SIGUSR1, signal.SIGUSR2  # to the attackers' process


@dataclass
class Tally:
    """What one kind of attacker sent and got back."""

    attackers: int = 0
    sent: int = 0
    codes: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"attackers": self.attackers, "sent": self.sent, "codes": dict(self.codes)}


def no_token_body() -> bytes:
    """A registration with 60,000 unknown keys: ~0.96 MB, under the broker's 1 MiB body limit
    so that only authentication refuses it."""
    keys = ",".join(f'"field_{i:05d}":0' for i in range(UNKNOWN_KEYS))
    return f'{{"id":"intruder","zone":"z","gpus":{{"V100":8}},{keys}}}'.encode()


def bad_batch_body(site: str) -> bytes:
    """1,000 of ``site``'s jobs, every one valid but the last, whose job type is unknown: the
    broker checks 999 before it refuses the batch."""
    jobs = [{"id": f"attack-{i:04d}", "home_site": site, "job_type": "resnet50", "gpus": 1,
             "work_steps": V100_STEPS_PER_S * 3600.0} for i in range(BATCH_JOBS)]
    jobs[-1]["job_type"] = "no-such-job-type"
    return json.dumps({"jobs": jobs}).encode()


def request(method: str, path: str, host: str, port: int, body: bytes,
            token: str | None = None, close: bool = False) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
    head += f"Authorization: Bearer {token}\r\n" if token else ""
    head += "Connection: close\r\n" if close else ""
    head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


async def read_answer(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """The status of an HTTP/1.1 answer and whether the broker closes the connection after it
    (its ``content-length`` body read and dropped)."""
    status_line = await reader.readuntil(b"\r\n")
    length, close = 0, False
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "connection" and value.strip().lower() == "close":
            close = True
    await reader.readexactly(length)
    return int(status_line.split(b" ", 2)[1]), close


FAILED = (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, OSError)


async def no_token(host: str, port: int, tally: Tally, go: asyncio.Event) -> None:
    """Item 1, forever (while ``go`` is set): a new connection, the whole 1 MB request, the
    answer."""
    payload = request("POST", "/v1/sites", host, port, no_token_body(), close=True)
    while True:
        await go.wait()
        writer = None
        tally.sent += 1
        try:
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(payload)
            status, _ = await read_answer(reader)
            tally.codes[str(status)] += 1
        except FAILED:
            tally.codes[RESET] += 1
            await asyncio.sleep(0)  # a refused connect must not spin without yielding
        finally:
            if writer is not None:
                writer.close()


async def bad_batch(host: str, port: int, site: str, token: str, tally: Tally,
                    go: asyncio.Event) -> None:
    """Item 2, forever (while ``go`` is set): the bad 1,000-job batch on one keep-alive
    connection (a new one when the broker closes it)."""
    payload = request("POST", "/v1/jobs/batch", host, port, bad_batch_body(site), token)
    streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
    while True:
        await go.wait()
        tally.sent += 1
        try:
            if streams is None:
                streams = await asyncio.open_connection(host, port)
            streams[1].write(payload)
            status, close = await read_answer(streams[0])
            tally.codes[str(status)] += 1
        except FAILED:
            tally.codes[RESET] += 1
            close = True
            await asyncio.sleep(0)
        if close and streams is not None:
            streams[1].close()
            streams = None


async def enrol(url: str, admin_token: str, sites: list[str]) -> dict[str, str]:
    """Enrol and register each bad-batch site (closed enrolment: the admin enrols, the site
    registers with its one-time token); returns each site's token."""
    tokens = {}
    admin = {"Authorization": f"Bearer {admin_token}"}
    async with httpx.AsyncClient(base_url=url, timeout=60) as c:
        for site in sites:
            body = {"id": site, "zone": "z", "gpus": {"V100": 8}}
            r = await c.post("/v1/enrolments", json=body, headers=admin)
            r.raise_for_status()
            once = {"Authorization": f"Bearer {r.json()['enrolment_token']}"}
            r = await c.post("/v1/sites", json=body, headers=once)
            r.raise_for_status()
            tokens[site] = r.json()["token"]
    return tokens


def split(n: int) -> tuple[int, int]:
    """(no-token, bad-batch) attackers out of ``n``: half each, the odd one no-token."""
    return (n + 1) // 2, n // 2


async def attack(url: str, admin_token: str, n: int, until: Callable[[], Awaitable[object]],
                 ready: Callable[[], None] = lambda: None,
                 only: str | None = None, go: asyncio.Event | None = None) -> dict[str, Tally]:
    """Run ``n`` attackers against the broker at ``url`` until ``until()`` returns; ``ready``
    is called once the bad-batch sites are enrolled and the attack begins. ``only``: all
    ``n`` of that kind. ``go``: they pause while it is clear (a request in flight ends)."""
    if go is None:
        go = asyncio.Event()
        go.set()
    address = httpx.URL(url)
    host, port = address.host, address.port or 80
    n_token, n_batch = split(n) if only is None else (n * (only == NO_TOKEN),
                                                       n * (only == BAD_BATCH))
    tag = uuid.uuid4().hex[:8]  # several runs on one broker enrol distinct sites
    tokens = await enrol(url, admin_token, [f"attacker-{tag}-{k}" for k in range(n_batch)])
    tallies = {NO_TOKEN: Tally(n_token), BAD_BATCH: Tally(n_batch)}
    tasks = [asyncio.create_task(no_token(host, port, tallies[NO_TOKEN], go))
             for _ in range(n_token)]
    tasks += [asyncio.create_task(bad_batch(host, port, site, token, tallies[BAD_BATCH],
                                                go))
              for site, token in tokens.items()]
    ready()
    try:
        await until()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return tallies


async def run(url: str, admin_token: str, n: int, seconds: float | None,
              only: str | None = None) -> dict:
    stop, go = asyncio.Event(), asyncio.Event()
    go.set()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(PAUSE, go.clear)
    loop.add_signal_handler(RESUME, go.set)
    if seconds is not None:
        loop.call_later(seconds, stop.set)
    tallies = await attack(url, admin_token, n, stop.wait,
                           lambda: print("ready", flush=True), only, go)
    return {**{kind: t.as_dict() for kind, t in tallies.items()},
            "cpu_s": time.process_time()}


class Attack:
    """``n`` attackers in a process of their own (this script) against the broker at ``url``,
    for a load generator: ``start`` returns once they are attacking, ``stop`` ends them and
    fills ``result`` (their JSON line). ``n`` = 0: nothing runs and ``result`` stays empty.

    ``alternate_s``: they attack and pause in turns of that many seconds (attacking first),
    and ``switches`` records when (``time.perf_counter()``, attacking or not), so that the
    honest requests sent during attacks and those sent between them, on the same broker under
    the same machine load, can be told apart (``attacking_at``)."""

    def __init__(self, url: str, admin_token: str, n: int, only: str | None = None,
                 alternate_s: float | None = None) -> None:
        self.url, self.admin_token, self.n, self.only = url, admin_token, n, only
        self.alternate_s = alternate_s
        self.process: asyncio.subprocess.Process | None = None
        self.result: dict = {}
        self.switches: list[tuple[float, bool]] = []
        self._turns: asyncio.Task | None = None

    async def start(self) -> None:
        if self.n == 0:
            return
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, os.path.abspath(__file__), "--url", self.url, "--attackers",
            str(self.n), *(["--only", self.only] if self.only else []),
            env={**os.environ, "CARBONFED_ADMIN_TOKEN": self.admin_token},
            stdout=asyncio.subprocess.PIPE)
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if line.strip() != b"ready":
            await self.stop()
            raise SystemExit(f"the attackers did not start (exit {self.process.returncode})")
        self.switches.append((time.perf_counter(), True))
        if self.alternate_s is not None:
            self._turns = asyncio.create_task(self._take_turns(self.process, self.alternate_s))

    async def _take_turns(self, process: asyncio.subprocess.Process, every_s: float) -> None:
        attacking = True
        while True:
            await asyncio.sleep(every_s)
            attacking = not attacking
            process.send_signal(RESUME if attacking else PAUSE)
            self.switches.append((time.perf_counter(), attacking))

    def attacking_at(self, times: Sequence[float]) -> list[bool]:
        """Whether the attackers were attacking at each of ``times`` (perf_counter)."""
        changes = [t for t, _ in self.switches]
        return [bool(i) and self.switches[i - 1][1]
                for i in (bisect.bisect_right(changes, t) for t in times)]

    async def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        if self._turns is not None:
            self._turns.cancel()
            await asyncio.gather(self._turns, return_exceptions=True)
        self.switches.append((time.perf_counter(), False))
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        assert process.stdout is not None
        out = (await process.stdout.read()).decode().strip()
        await process.wait()
        if out:
            self.result = json.loads(out.splitlines()[-1])


def report(result: dict) -> str:
    """What the attackers did, one line per kind, from their JSON line."""
    lines = []
    for kind in (NO_TOKEN, BAD_BATCH):
        t = result.get(kind)
        if t is not None and t["attackers"]:
            codes = ", ".join(f"{code} x{n}" for code, n in sorted(t["codes"].items()))
            lines.append(f"attackers {kind} ({t['attackers']}): {t['sent']} requests sent; "
                         f"answers {codes or 'none'}")
    lines.append(f"attackers' process CPU {result.get('cpu_s', 0.0):.1f} s (the same cores)")
    return "\n".join(lines)


def compare(latency_ms: np.ndarray, attacking: np.ndarray, turn_s: float) -> str:
    """The honest requests' p50/p99 while the attackers attacked and while they paused (by
    when each was sent), and the ratio of the p99s."""
    on, off = latency_ms[attacking], latency_ms[~attacking]
    if not len(on) or not len(off):
        return "the load ended within the first turn: nothing to compare"
    p99_on, p99_off = np.percentile(on, 99), np.percentile(off, 99)
    return (f"honest offers while the attackers attack ({len(on)}): p50 "
            f"{np.percentile(on, 50):.1f} ms, p99 {p99_on:.1f} ms; while they pause "
            f"({len(off)}): p50 {np.percentile(off, 50):.1f} ms, p99 {p99_off:.1f} ms "
            f"(turns of {turn_s:g} s); p99 ratio {p99_on / p99_off:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="the broker, e.g. http://127.0.0.1:8000")
    parser.add_argument("--attackers", type=int, default=4,
                        help="how many (half no-token, half bad-batch; default 4)")
    parser.add_argument("--only", choices=(NO_TOKEN, BAD_BATCH),
                        help="all attackers of this kind (to tell the kinds' effects apart)")
    parser.add_argument("--seconds", type=float,
                        help="stop after this long (default: at SIGTERM or SIGINT)")
    args = parser.parse_args()
    if args.attackers < 1:
        parser.error(f"--attackers: must be at least 1, got {args.attackers}")
    admin_token = os.environ.get("CARBONFED_ADMIN_TOKEN")
    if not admin_token:
        parser.error("CARBONFED_ADMIN_TOKEN: not set (the admin token enrols the bad-batch "
                     "sites)")
    try:
        result = asyncio.run(run(args.url, admin_token, args.attackers, args.seconds,
                                 args.only))
    except httpx.HTTPError as error:
        sys.exit(f"attackers: enrolling the bad-batch sites failed: {error}")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
