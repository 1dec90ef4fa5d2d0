"""``carbonfed agent CONFIG.yaml --broker URL``: run a site agent against a live broker.

The config names the site (as in a scenario's ``sites``), its grid zone's signals (as in a
scenario's ``zones``) and the agent's schedule; it is validated here with the scenario schemas
and handed to ``sites.agent`` as plain objects.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from datetime import datetime
from pathlib import Path

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from scenarios.commands.base import Command
from scenarios.data_paths import DATA_ENV, DataPaths
from scenarios.loader import validate_yaml
from scenarios.schema import SiteSpecModel, ZoneSpec
from sites import DEFAULT_GPUS, InputError, SiteSpec
from sites.agent import AgentConfig, AgentError, Backoff, IncompatibleBrokerError, SiteAgent
from sites.executors import EXECUTORS, ExecutorSpec
from sites.timegrid import check_slot_h

EXIT_AGENT_FAILED = 1  # the broker refused or never answered (bad input exits 2)


class BackoffSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    initial_s: float = Field(0.2, gt=0)
    max_s: float = Field(10.0, gt=0)
    give_up_after_s: float = Field(300.0, gt=0)


class AgentFile(BaseModel):
    """The agent's YAML file."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    site: SiteSpecModel
    signals: ZoneSpec
    broker_url: str | None = None
    state_file: Path | None = None  # default: <config>.state.json beside the config
    slot_h: float = Field(1.0, gt=0)
    horizon_slots: int = Field(24, ge=1, le=24 * 14)
    offer_interval_s: float = Field(5.0, gt=0)
    poll_interval_s: float = Field(1.0, gt=0)
    time_scale: float = Field(1.0, gt=0)
    signal_start: datetime | None = None
    signal_hours: int = Field(24 * 30, ge=1)
    seed: int = 0
    enrolment_token: str | None = None  # or --enrolment-token / CARBONFED_ENROLMENT_TOKEN
    backoff: BackoffSpec = BackoffSpec()
    executor: ExecutorSpec = ExecutorSpec()  # how jobs run, and which the site accepts

    @field_validator("slot_h")
    @classmethod
    def _slot_h_fits_hours(cls, slot_h: float) -> float:
        check_slot_h(slot_h)  # the broker's and the scenarios' rule
        return slot_h


def check_broker_url(url: str, source: str) -> str:
    """An http(s) URL with a host, or a one-line error naming where it came from."""
    import httpx

    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as error:
        raise InputError(source, "", f"not a URL: {url!r} ({error})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise InputError(source, "", f"not an http(s) URL with a host: {url!r} (e.g. "
                         "http://127.0.0.1:8000)")
    return url.rstrip("/")


def load_agent_config(path: Path, broker_url: str | None,
                      enrolment_token: str | None = None) -> AgentConfig:
    source = str(path)
    if not path.is_file():
        raise InputError(source, "", "no such agent config file")
    spec = validate_yaml(path.read_text(), source, AgentFile, "an agent config")
    if spec.site.fleet is not None or not spec.site.gpus:
        raise InputError(source, "site.gpus", "an agent's site lists its GPUs (no fleet files)")
    for gpu in spec.site.gpus:
        if gpu not in DEFAULT_GPUS:
            raise InputError(source, f"site.gpus.{gpu}",
                             f"unknown GPU type '{gpu}' (known: {', '.join(DEFAULT_GPUS)})")
    url = broker_url or spec.broker_url
    if not url:
        raise InputError(source, "broker_url", "no broker URL (give --broker or broker_url)")
    url = check_broker_url(url, "--broker" if broker_url else f"{source}: broker_url")
    base = path.parent
    data_dir = os.environ.get(DATA_ENV)
    paths = DataPaths(source, base, Path(data_dir) if data_dir else None)
    state = spec.state_file or path.with_suffix(".state.json")
    start = None
    if spec.signal_start is not None:
        start = pd.Timestamp(spec.signal_start)
        start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    s = spec.site
    carbon, price = spec.signals.build(paths, "signals")
    executor = spec.executor
    if executor.kind not in EXECUTORS:
        raise InputError(source, "executor.kind", f"unknown executor '{executor.kind}' (known: "
                         f"{', '.join(EXECUTORS)})")
    for gpu in executor.gpu_indices:
        if gpu not in s.gpus:
            raise InputError(source, f"executor.gpu_indices.{gpu}", "not a GPU type of the site")
    work_dir = executor.work_dir or path.with_suffix(".jobs")
    executor = executor.model_copy(
        update={"work_dir": work_dir if work_dir.is_absolute() else base / work_dir})
    return AgentConfig(
        site=SiteSpec(s.id, s.zone, dict(s.gpus), s.pue, s.egress_usd_per_gb),
        carbon_g_per_kwh=carbon,
        price_usd_per_mwh=price,
        broker_url=url,
        state_file=state if state.is_absolute() else base / state,
        slot_h=spec.slot_h, horizon_slots=spec.horizon_slots,
        offer_interval_s=spec.offer_interval_s, poll_interval_s=spec.poll_interval_s,
        time_scale=spec.time_scale, signal_start=start, signal_hours=spec.signal_hours,
        seed=spec.seed, enrolment_token=enrolment_token or spec.enrolment_token,
        backoff=Backoff(**spec.backoff.model_dump()), executor=executor,
    )


class AgentCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("config", type=Path, help="agent YAML (site, signals, schedule)")
        parser.add_argument("--broker", help="broker URL, e.g. http://127.0.0.1:8000")
        parser.add_argument("--duration-s", type=float, help="stop after this many seconds")
        parser.add_argument("--enrolment-token",
                            default=os.environ.get("CARBONFED_ENROLMENT_TOKEN"),
                            help="the one-time token from `carbonfed admin enrol` (shows in "
                            "the process list: prefer --enrolment-token-file, "
                            "CARBONFED_ENROLMENT_TOKEN, or enrolment_token in the config)")
        parser.add_argument("--enrolment-token-file", type=Path,
                            help="a file whose first line is the enrolment token")
        parser.add_argument("-v", "--verbose", action="store_true", help="log every request")

    def run(self, args: argparse.Namespace) -> int:
        logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                            format="%(asctime)s %(name)s %(message)s")
        if args.duration_s is not None and not args.duration_s > 0:
            raise InputError("--duration-s", "", f"must be > 0 (got {args.duration_s:g})")
        token = args.enrolment_token
        if args.enrolment_token_file is not None:
            try:
                token = (args.enrolment_token_file.read_text().splitlines() or [""])[0].strip()
            except OSError as error:
                raise InputError(str(args.enrolment_token_file), "",
                                 f"cannot read the enrolment token: {error.strerror}") from None
        config = load_agent_config(args.config, args.broker, token)
        # one line per event without -v; with -v the request log says it all
        say = (lambda line: None) if args.verbose else (lambda line: print(line, flush=True))
        agent = SiteAgent(config, say=say)
        try:
            agent.run(duration_s=args.duration_s)
        except IncompatibleBrokerError as error:
            raise InputError(str(args.config), "slot_h", str(error)) from None
        except AgentError as error:
            print(f"error: {error}", flush=True)
            return EXIT_AGENT_FAILED
        # Ctrl-C is the CLI's (exit 130, as every command)
        if not agent.answered:
            # its time ran out without a single answer from the broker: not a success
            print(f"error: the broker at {config.broker_url} never answered "
                  f"({agent.last_problem or 'no request finished'})", file=sys.stderr,
                  flush=True)
            return EXIT_AGENT_FAILED
        return 0
