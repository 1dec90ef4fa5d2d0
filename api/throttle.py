"""Per-principal request limits: a rate (a token bucket) and a number of requests in flight.

A principal is a site's token, the admin's token, an enrolment token, or, for a client without
a valid token (registration under open registration, health, docs, the dashboard's page, failed
authentications), its IP address. ``api.gate`` asks ``admit`` once it knows who calls and
before a byte of the body is read; over a limit the request gets 429 with Retry-After at once.

A site also has a budget of jobs (``JobBudget``): every job it submits, accepted or refused,
costs one (checking a 1,000-job batch costs the broker about 0.1 s of CPU whatever the answer,
time every other request shares the interpreter with), refilled at a rate up to a burst. A
submission is let in while the budget is above zero and then charged its whole size, so one
full batch is never cut; the budget may go negative, and the site then waits in proportion
(429 with Retry-After at the gate, before the body is read). The admin has no job budget (it
is the operator; ``carbonfed submit`` sends its batches with the admin token).

Our own code rather than a library: what is needed is a bucket and a counter per principal in
one process's memory (one broker process owns the database), touched only by the event loop
(so no lock), on a clock a test can turn. The ``limits`` package (slowapi's) counts fixed or
moving windows through a storage backend and has no notion of requests in flight; pyrate-limiter
(in the lock through schemathesis) is a leaky bucket that makes callers wait rather than refuse.
Neither bounds concurrency, the limit that matters for slow or costly requests.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

CONCURRENCY_RETRY_S = 1  # a request in flight usually ends within a second
MAX_KEYS = 100_000  # principals tracked at once: idle ones are forgotten beyond it


@dataclass(frozen=True)
class Limit:
    """``rate_per_s`` requests a second on average, ``burst`` at once after a quiet spell,
    ``concurrent`` in flight at a time."""

    rate_per_s: float
    burst: int
    concurrent: int


@dataclass(frozen=True)
class Refusal:
    message: str
    retry_after_s: int
    first: bool  # the first refusal since the principal was last admitted (worth a log line)


@dataclass
class _Bucket:
    tokens: float
    at_s: float  # when ``tokens`` was last brought up to date
    in_flight: int = 0
    refused: int = 0  # refusals since it was last admitted


@dataclass(frozen=True)
class JobBudget:
    """``rate_per_s`` jobs a second on average, ``burst`` at once, per site."""

    rate_per_s: float
    burst: int


UNLIMITED_JOBS = JobBudget(math.inf, 1)


class RequestLimits:
    """The limits' state for one app: a bucket per principal key, and a job budget per site."""

    def __init__(self, principal: Limit, anonymous: Limit,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_keys: int = MAX_KEYS, jobs: JobBudget = UNLIMITED_JOBS) -> None:
        self.principal = principal
        self.anonymous = anonymous
        self.jobs = jobs
        self.monotonic = monotonic  # tests may turn it
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}
        # per site (bounded by enrolment, never forgotten: forgetting would cancel a debt)
        self._job_buckets: dict[str, _Bucket] = {}

    def admit(self, key: str, anonymous: bool, submits_jobs: bool = False) -> Refusal | None:
        """Count one request of ``key``: None if it may go on (then ``release(key)`` when it
        ends), else why not and when to retry. A refused request costs its client nothing.
        ``submits_jobs``: a site's job submission, refused too while its job budget is spent
        (the route then charges it with ``charge_jobs``)."""
        limit = self.anonymous if anonymous else self.principal
        now = self.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._forget_idle()
            bucket = self._buckets[key] = _Bucket(float(limit.burst), now)
        else:
            bucket.tokens = min(float(limit.burst),
                                bucket.tokens + (now - bucket.at_s) * limit.rate_per_s)
            bucket.at_s = now
        if bucket.in_flight >= limit.concurrent:
            bucket.refused += 1
            return Refusal(f"{limit.concurrent} requests of this client are in flight, the "
                           "broker's limit", CONCURRENCY_RETRY_S, bucket.refused == 1)
        if bucket.tokens < 1.0:
            bucket.refused += 1
            wait_s = max(1, math.ceil((1.0 - bucket.tokens) / limit.rate_per_s))
            return Refusal(f"over this client's request rate ({limit.rate_per_s:g} a second, "
                           f"{limit.burst} at once)", wait_s, bucket.refused == 1)
        if submits_jobs and (jobs_wait_s := self._jobs_wait_s(key)) is not None:
            bucket.refused += 1
            return Refusal(f"over this site's job submission rate ({self.jobs.rate_per_s:g} "
                           f"jobs a second, {self.jobs.burst} at once)", jobs_wait_s,
                           bucket.refused == 1)
        bucket.tokens -= 1.0
        bucket.in_flight += 1
        bucket.refused = 0
        return None

    def _job_bucket(self, key: str) -> _Bucket:
        now = self.monotonic()
        bucket = self._job_buckets.get(key)
        if bucket is None:
            bucket = self._job_buckets[key] = _Bucket(float(self.jobs.burst), now)
        elif math.isfinite(self.jobs.rate_per_s):
            bucket.tokens = min(float(self.jobs.burst),
                                bucket.tokens + (now - bucket.at_s) * self.jobs.rate_per_s)
        else:
            bucket.tokens = float(self.jobs.burst)
        bucket.at_s = now
        return bucket

    def _jobs_wait_s(self, key: str) -> int | None:
        """None while ``key``'s job budget is above zero, else whole seconds until it is."""
        tokens = self._job_bucket(key).tokens
        if tokens > 0.0:
            return None
        return max(1, math.ceil((1.0 - tokens) / self.jobs.rate_per_s))

    def charge_jobs(self, key: str, n: int) -> None:
        """``key`` submits ``n`` jobs (checked whatever the answer): its budget pays for them,
        into debt if it must."""
        self._job_bucket(key).tokens -= n

    def jobs_left(self, key: str) -> float:
        return self._job_bucket(key).tokens

    def release(self, key: str) -> None:
        """An admitted request of ``key`` has ended."""
        bucket = self._buckets.get(key)
        if bucket is not None and bucket.in_flight > 0:
            bucket.in_flight -= 1

    def in_flight(self, key: str) -> int:
        bucket = self._buckets.get(key)
        return 0 if bucket is None else bucket.in_flight

    def _forget_idle(self) -> None:
        """Make room: forget the principals with nothing in flight, those idle longest first,
        down to half the bound (a forgotten principal starts again with a full bucket, which
        it would mostly have by then anyway)."""
        idle = sorted((b.at_s, k) for k, b in self._buckets.items() if b.in_flight == 0)
        for _, key in idle[:max(0, len(self._buckets) - self.max_keys // 2)]:
            del self._buckets[key]


class Tarpit:
    """Refusals (401, 429) are answered after ``delay_s``, at most ``max_held`` at a time (the
    rest at once). A client that sends its next request as soon as it is answered, whatever
    the answer, then makes one a ``delay_s`` per connection instead of thousands a second:
    each refusal of a new connection with an unread body costs the broker ~0.3 ms (mostly the
    kernel's, closing a socket with data unread), and at four such clients that was a quarter
    of its CPU. An honest client waits out Retry-After (1 s at least) anyway. The bound keeps
    held connections (each with up to a socket buffer of unread body) few."""

    def __init__(self, delay_s: float, max_held: int) -> None:
        self.delay_s, self.max_held = delay_s, max_held
        self.held = 0

    async def wait(self) -> None:
        if self.delay_s <= 0 or self.held >= self.max_held:
            return
        self.held += 1
        try:
            await asyncio.sleep(self.delay_s)
        finally:
            self.held -= 1
