"""The live broker's settings (pydantic-settings): every field is an environment variable
``CARBONFED_<NAME>`` and a ``carbonfed serve --<name>`` flag (flags win over the environment).

Defaults are documented here once; ``scenarios/commands/serve.py`` builds its flags from these
fields and the README's table lists them.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from broker.planner import PLANNER_DEFAULTS
from market.schemes import DEFAULT_MARKUP
from optimization import SOLVE_METHODS, SolverOptions
from sites.model_base import name_of
from sites.timegrid import check_slot_h

ENV_PREFIX = "CARBONFED_"
MIB = 1024 * 1024
MIN_ADMIN_TOKEN_BITS = 256  # 32 bytes of entropy
# The built-in scenarios' carbon price: at 0 the live broker weighs only energy prices and a
# quickstart never shows a carbon-aware placement.
DEFAULT_CARBON_PRICE_USD_PER_T = 100.0


def repeat_period(token: str) -> int:
    """The length of the shortest prefix whose repetition makes ``token`` ("abcabcab": 3)."""
    for period in range(1, len(token)):
        if all(token[i] == token[i % period] for i in range(period, len(token))):
            return period
    return len(token)


def estimated_entropy_bits(token: str) -> float:
    """An upper estimate of a token's entropy: the length of its shortest repeating unit x
    log2(size of the alphabets it uses).

    A token of 32 random bytes in any usual encoding (hex: 64 characters, URL-safe base64: 43)
    reaches 256 bits; short, single-character-class and repeated tokens ("Password1!" x 5,
    "0123456789abcdef" x 4) do not.
    """
    classes = (
        (str.islower, 26), (str.isupper, 26), (str.isdigit, 10),
        (lambda c: not c.isalnum(), 32),
    )
    alphabet = sum(size for test, size in classes if any(test(c) for c in token))
    if alphabet == 0 or len(set(token)) < 8:  # "aaaa...": no entropy however long
        return 0.0
    return repeat_period(token) * math.log2(alphabet)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, frozen=True, extra="forbid", env_ignore_empty=True,
        validate_default=True,
    )

    db_url: str = Field("sqlite:///carbonfed.db", description="SQLAlchemy URL (flag: --db)")
    admin_token: SecretStr | None = Field(
        None, description="the admin's bearer token, >= 32 bytes of entropy (prefer the env "
        "var: a flag shows in the process list); default: the stored hash, or a new token "
        "printed once to the terminal")
    admin_token_file: Path | None = Field(
        None, description="a file whose first line is the admin token (instead of "
        "admin_token; neither a flag's value nor an environment is read by other users)")
    open_registration: bool = Field(
        False, description="anyone may register a site with any fleet (demos and tests only); "
        "default: only sites an admin enrolled")
    plan_interval_s: float | None = Field(
        None, gt=0, description="seconds between planning rounds; default: only on POST /plans")
    stale_after_s: float = Field(
        300.0, gt=0, description="a site without a newer offer gets no new jobs after this")
    heartbeat_timeout_s: float = Field(
        40.0, gt=0, description="a site neither offering nor heartbeating within this is "
        "taken for dead: it gets nothing new, and its unacknowledged assignments are requeued, "
        "whatever its last offer says (a node lease: liveness apart from offers)")
    ack_timeout_s: float = Field(
        30.0, gt=0, description="an assignment not acknowledged within this is requeued")
    lease_s: float = Field(
        120.0, gt=0, description="an acknowledged or running job whose site does not renew "
        "it (offer or heartbeat listing it) within this is requeued")
    min_runtime_fraction: float = Field(
        0.5, ge=0, le=1, description="a completion is accepted no earlier than this fraction "
        "of the job's expected transfer and run time after its start (409 before)")
    max_runtime_factor: float = Field(
        2.0, ge=1, description="a running job not completed within its expected transfer and "
        "run time x this + max_runtime_margin_s after its start is revoked and requeued "
        "(like Kubernetes' activeDeadlineSeconds)")
    max_runtime_margin_s: float = Field(300.0, ge=0, description="see max_runtime_factor")
    time_scale: float = Field(1.0, gt=0, description="broker clock: simulated h per real h")
    slot_h: float = Field(1.0, gt=0, le=24, description="planning slot (hours)")
    horizon_slots: int = Field(24, ge=1, le=24 * 14, description="planning look-ahead (slots)")
    carbon_price_usd_per_t: float = Field(
        DEFAULT_CARBON_PRICE_USD_PER_T, ge=0, description="carbon price in planning and the "
        "summary (USD/t CO2; the built-in scenarios' price)")
    delay_cost_usd_per_gpu_h: float = Field(PLANNER_DEFAULTS.delay_cost_usd_per_gpu_h, ge=0,
                                            description="as in scenarios")
    ledger_markup: float = Field(DEFAULT_MARKUP, ge=0, le=10, description="settlement "
                                 "(/v1/ledger): a hosted job's home pays its host energy and "
                                 "carbon x (1 + this), the cost-plus scheme")
    transfer_gbps: float = Field(10.0, gt=0, description="data-set transfer speed (Gbit/s)")
    solver_method: Annotated[str, *name_of(SOLVE_METHODS, "solver method")] = Field(
        "auto", description="MILP method")
    solver_time_limit_s: float = Field(
        10.0, gt=0, description="a round's planning budget (s): the live broker answers "
        "within it (the solve itself is bounded by deterministic work, optimization."
        "SolverOptions; this wall clock stops it only when that work takes longer)")
    solver_mip_gap: float = Field(SolverOptions().mip_gap, ge=0, lt=1,
                                  description="relative MIP gap")
    solver_threads: int = Field(SolverOptions().threads, ge=1, description="HiGHS threads")
    solver_aggregate_tolerance_usd: float = Field(
        SolverOptions().aggregate_tolerance_usd, ge=0,
        description="merge queued jobs that differ by at most this many USD a job on every "
        "option (same pools, starts and GPUs; a parameter sweep, say) before a round is "
        "solved, and hand the plan back (optimization.aggregation: the round's bound stays "
        "proven); 0 merges none")
    planner_process: bool = Field(
        True, description="solve planning rounds in a worker process at a lower priority, so "
        "requests are answered while a round is solved (false: on the API process's planning "
        "thread, where its Python-heavy option building slows every request)")
    max_jobs_per_round: int = Field(
        5000, ge=1, description="queued jobs a round considers, in fair-share order: every "
        "home site's most urgent job, then every site's second, ... (urgency: a deadline still "
        "ahead, earliest first, then age; a passed deadline counts as none); the rest wait "
        "for later rounds")
    max_sites_per_round: int | None = Field(
        None, ge=1, description="usable sites a round gives GPU pools to, cheapest with free "
        "GPUs first (mean price + carbon price x mean carbon of their offer); default: every "
        "site with a fresh offer (each job's options stay at a few of them: "
        "spare_sites_per_job)")
    spare_sites_per_job: int = Field(
        4, ge=0, description="a round gives each job options at its home, at the cheapest "
        "sites with room for it (a fill of the free GPUs by cost, most urgent jobs first) and "
        "at this many more sites with room, not at every site: options grow with jobs, not "
        "jobs x sites (broker.live.candidate_sites)")
    plan_history_rounds: int = Field(
        1000, ge=1, description="rounds whose whole plan (every planned start, every deferred "
        "job) is kept; older rounds keep their figures only (a round's plan is ~100 bytes a job "
        "it considered: 19 KB at 200 jobs, 0.5 MB at 5,000)")
    max_body_bytes: int = Field(MIB, ge=1024, description="larger request bodies get 413")
    body_read_timeout_s: float = Field(
        15.0, gt=0, description="a request body must arrive within this, else 408 and the "
        "connection is closed")
    token_cache_ttl_s: float = Field(
        15.0, gt=0, le=3600, description="a cached site token is looked up again after this "
        "(a revocation the cache missed dies within it)")
    rate_limit_per_s: float = Field(
        100.0, gt=0, description="requests a second one principal (a site's token, the "
        "admin's) may make on average (a token bucket); over it 429 with Retry-After, before "
        "the body is read. An agent makes well under one a second (an offer every few "
        "seconds, a few calls per job); carbonfed submit sends one batch")
    rate_limit_burst: int = Field(
        1000, ge=1, description="requests one principal may make at once after a quiet "
        "spell (the bucket's size)")
    max_concurrent_requests: int = Field(
        32, ge=1, description="requests of one principal in flight at a time (from its "
        "headers to the end of its answer); one more gets 429 with Retry-After: 1 (an agent "
        "has one or two)")
    anonymous_rate_limit_per_s: float = Field(
        20.0, gt=0, description="as rate_limit_per_s, per IP address, for requests without a "
        "valid token: registration under open registration, health, docs, the dashboard's "
        "page, failed authentications")
    anonymous_rate_limit_burst: int = Field(
        500, ge=1, description="as rate_limit_burst, per IP address without a valid token")
    anonymous_max_concurrent_requests: int = Field(
        16, ge=1, description="as max_concurrent_requests, per IP address without a valid "
        "token (bounds slow bodies from one address)")
    refusal_delay_s: float = Field(
        1.0, ge=0, le=10, description="401 and 429 answers are sent after this delay (0: at "
        "once), so that a client sending its next request the moment it is refused makes one "
        "a second per connection rather than thousands; an honest client waits Retry-After "
        "(1 s at least) anyway")
    max_delayed_refusals: int = Field(
        64, ge=0, description="refusals held for refusal_delay_s at a time; the rest are "
        "answered at once (each held one keeps a connection and its unread body)")
    max_batch_jobs: int = Field(1000, ge=1, description="jobs per POST /jobs/batch")
    job_submit_rate_per_s: float = Field(
        10.0, gt=0, description="jobs a second one site may submit on average, accepted or "
        "refused (checking a 1,000-job batch costs the broker ~0.1 s of CPU either way); a "
        "submission while the site's budget is spent gets 429 with Retry-After before its body "
        "is read. The admin's submissions (carbonfed submit) are not counted")
    job_submit_burst: int = Field(
        1000, ge=1, description="jobs one site may submit at once after a quiet spell (a "
        "submission is let in while any budget is left and charged in full, so a whole batch "
        "is never cut)")
    max_queued_jobs_per_site: int = Field(
        5000, ge=1, description="queued jobs one home site may have (a submission over it "
        "gets 422)")
    max_queued_gpu_h_per_site: float = Field(
        100_000.0, gt=0, description="queued GPU-hours (run time on V100s x GPUs) one home "
        "site may have (a submission over it gets 422)")
    min_price_usd_per_mwh: float = Field(-500.0, description="offers' price floor")
    max_price_usd_per_mwh: float = Field(5000.0, description="offers' price ceiling")
    min_carbon_g_per_kwh: float = Field(0.0, ge=0, description="offers' carbon floor")
    max_carbon_g_per_kwh: float = Field(2000.0, gt=0, description="offers' carbon ceiling")
    max_job_gpus: int = Field(64, ge=1, description="GPUs one job may ask for")
    max_job_work_steps: float = Field(1e10, gt=0, description="a job's training steps")
    max_job_dataset_gb: float = Field(10_000.0, ge=0, description="a job's data set (GB)")
    max_job_runtime_h: float = Field(
        24.0 * 30, gt=0, description="a job's run time on one reference GPU (V100) per GPU it "
        "asks for: work_steps / (gpus x V100 steps/s)")
    max_attempts: int = Field(
        3, ge=1, le=100, description="a job whose run fails is requeued (on another site when "
        "one can take it) until it has failed this many times; then it is failed")
    flag_after_failures: int = Field(
        3, ge=1, description="a site whose last this many finished runs all failed is flagged "
        "in the summary")
    max_submit_ahead_h: float = Field(
        24.0 * 365, gt=0, description="how far ahead submit_h may lie (such jobs are held)")

    @model_validator(mode="before")
    @classmethod
    def _token_from_file(cls, data: object) -> object:
        if not isinstance(data, dict) or data.get("admin_token_file") is None:
            return data
        if data.get("admin_token") is not None:
            raise ValueError("give admin_token or admin_token_file, not both")
        path = Path(str(data["admin_token_file"])).expanduser()
        try:
            lines = path.read_text().splitlines()
        except OSError as error:
            raise ValueError(f"admin_token_file {path}: {error.strerror}") from None
        return {**data, "admin_token": lines[0].strip() if lines else ""}

    @model_validator(mode="after")
    def _ranges(self) -> Settings:
        if self.min_price_usd_per_mwh >= self.max_price_usd_per_mwh:
            raise ValueError("min_price_usd_per_mwh must be below max_price_usd_per_mwh")
        if self.min_carbon_g_per_kwh >= self.max_carbon_g_per_kwh:
            raise ValueError("min_carbon_g_per_kwh must be below max_carbon_g_per_kwh")
        return self

    @field_validator("slot_h")
    @classmethod
    def _slot_h_fits_hours(cls, slot_h: float) -> float:
        check_slot_h(slot_h)  # the scenarios' rule: whole hours, or a divisor of an hour
        return slot_h

    @field_validator("admin_token")
    @classmethod
    def _strong_admin_token(cls, token: SecretStr | None) -> SecretStr | None:
        if token is not None and estimated_entropy_bits(token.get_secret_value()) < (
                MIN_ADMIN_TOKEN_BITS):
            raise ValueError("the admin token needs at least 32 bytes of entropy (e.g. "
                             "python -c 'import secrets; print(secrets.token_urlsafe(32))')")
        return token
