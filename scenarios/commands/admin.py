"""``carbonfed admin ...`` (enrol and manage sites over the broker's API) and ``carbonfed db``.

``admin`` talks to a running broker with the admin token from ``CARBONFED_ADMIN_TOKEN`` (or
``--admin-token-file``), so the broker's own checks and caches apply; each action is one route
of the API (see the README's "Live broker"). ``db upgrade`` runs the schema migrations on a
database without serving (for PostgreSQL operators; ``carbonfed serve`` runs them itself).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scenarios.commands.base import Command
from sites import InputError

DEFAULT_BROKER = "http://127.0.0.1:8000"


def parse_fleet(text: str) -> dict[str, int]:
    """``V100=16,P100=8`` -> {"V100": 16, "P100": 8}."""
    fleet: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        gpu, sep, count = part.partition("=")
        if not sep or not count.strip().isdigit():
            raise InputError("--gpus", "", f"expected TYPE=COUNT[,TYPE=COUNT...], got {part!r}")
        fleet[gpu.strip()] = int(count)
    if not fleet:
        raise InputError("--gpus", "", "no GPUs given (e.g. --gpus V100=16,P100=8)")
    return fleet


def _enrol_body(args: argparse.Namespace) -> dict[str, Any]:
    bounds = {name: getattr(args, name) for name in (
        "min_price_usd_per_mwh", "max_price_usd_per_mwh", "min_carbon_g_per_kwh",
        "max_carbon_g_per_kwh") if getattr(args, name) is not None}
    return {"id": args.site, "zone": args.zone, "gpus": parse_fleet(args.gpus), "pue": args.pue,
            "egress_usd_per_gb": args.egress_usd_per_gb, "bounds": bounds}


# action -> (HTTP method, path for a site id, body builder or None)
ACTIONS: dict[str, tuple[str, Callable[[str], str], Callable[[argparse.Namespace], Any] | None]] = {
    "enrol": ("POST", lambda site: "/v1/enrolments", _enrol_body),
    "list": ("GET", lambda site: "/v1/sites", None),
    "disable": ("POST", lambda site: f"/v1/sites/{site}/disable", None),
    "enable": ("POST", lambda site: f"/v1/sites/{site}/enable", None),
    "rotate-token": ("POST", lambda site: f"/v1/sites/{site}/rotate-token", None),
    "reset-sequence": ("POST", lambda site: f"/v1/sites/{site}/reset-sequence", None),
    "deregister": ("DELETE", lambda site: f"/v1/sites/{site}", None),
}


def admin_token(args: argparse.Namespace) -> str:
    if args.admin_token_file is not None:
        path = Path(args.admin_token_file)
        if not path.is_file():
            raise InputError(str(path), "", "no such admin token file")
        return path.read_text().strip()
    token = os.environ.get("CARBONFED_ADMIN_TOKEN")
    if not token:
        raise InputError("admin token", "", "set CARBONFED_ADMIN_TOKEN or give "
                         "--admin-token-file")
    return token


def _print_result(action: str, body: Any) -> None:
    if action == "list":
        for site in body:
            gpus = ",".join(f"{g}={n}" for g, n in site["gpus"].items())
            print(f"{site['id']:<20} {site['status']:<13} zone {site['zone']:<12} {gpus}")
        return
    site = body.get("site", body)
    print(f"site {site['id']}: {site['status']}")
    if "enrolment_token" in body:
        print(f"enrolment token (one time; shown once): {body['enrolment_token']}")
    if "token" in body:
        label = "enrolment token" if site["status"] == "enrolled" else "site token"
        print(f"new {label} (shown once): {body['token']}")


class AdminCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        add_broker_arguments(parser)
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        enrol = actions.add_parser("enrol", help="enrol a site (or re-enrol a disabled or "
                                   "deregistered one); prints its one-time enrolment token")
        enrol.add_argument("site")
        enrol.add_argument("--zone", required=True)
        enrol.add_argument("--gpus", required=True, help="the fleet, e.g. V100=16,P100=8")
        enrol.add_argument("--pue", type=float, default=1.2)
        enrol.add_argument("--egress-usd-per-gb", type=float, default=0.02)
        for name in ("min-price-usd-per-mwh", "max-price-usd-per-mwh", "min-carbon-g-per-kwh",
                     "max-carbon-g-per-kwh"):
            enrol.add_argument(f"--{name}", type=float,
                               help="narrow the broker's bound for this site")
        actions.add_parser("list", help="every site with its status")
        for action, text in (("disable", "refuse its token, requeue its live jobs"),
                             ("enable", "accept its token again"),
                             ("rotate-token", "a new token (printed once); the old one dies"),
                             ("reset-sequence", "forget its offer, so its sequence may restart"),
                             ("deregister", "remove it (re-enrolment brings it back)")):
            actions.add_parser(action, help=text).add_argument("site")

    def run(self, args: argparse.Namespace) -> int:
        token = admin_token(args)
        method, path, make_body = ACTIONS[args.action]
        body = make_body(args) if make_body else None
        answer = call_broker(args.broker, token, method, path(getattr(args, "site", "")), body,
                             args.action)
        if args.json:
            print(json.dumps(answer, indent=2))
        else:
            _print_result(args.action, answer)
        return 0


def add_broker_arguments(parser: argparse.ArgumentParser) -> None:
    """``--broker``, ``--admin-token-file`` and ``--json``: a command that calls the API."""
    parser.add_argument("--broker", default=os.environ.get("CARBONFED_BROKER", DEFAULT_BROKER),
                        help=f"broker URL (CARBONFED_BROKER; default {DEFAULT_BROKER})")
    parser.add_argument("--admin-token-file",
                        help="file holding the admin token (default: CARBONFED_ADMIN_TOKEN)")
    parser.add_argument("--json", action="store_true", help="print the broker's answer")


def call_broker(broker: str, token: str, method: str, path: str, body: Any,
                action: str) -> Any:
    """One call to the broker's API; its JSON answer, or a one-line ``InputError`` (bad URL,
    broker unreachable, an error answer with the broker's message)."""
    import httpx

    try:
        url = httpx.URL(broker)
    except httpx.InvalidURL as error:
        raise InputError("--broker", "", f"not a URL: {error}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InputError("--broker", "", f"not an http(s) URL: {broker!r}")
    try:
        with httpx.Client(base_url=url, timeout=30) as client:
            r = client.request(method, path, json=body,
                               headers={"Authorization": f"Bearer {token}"})
    except httpx.TransportError as error:
        raise InputError("--broker", "", f"broker unreachable at {broker} "
                         f"({type(error).__name__})") from None
    try:
        answer = r.json()
    except ValueError:
        answer = {"message": r.text.strip()[:200]}
    if r.status_code >= 400:
        message = answer.get("message", answer) if isinstance(answer, dict) else answer
        raise InputError(action, "", f"HTTP {r.status_code}: {message}")
    return answer


class DbCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        up = actions.add_parser("upgrade", help="run the migrations up to the newest schema")
        up.add_argument("--db", default=os.environ.get("CARBONFED_DB_URL",
                                                       "sqlite:///carbonfed.db"),
                        help="database URL (CARBONFED_DB_URL; default sqlite:///carbonfed.db)")

    def run(self, args: argparse.Namespace) -> int:
        from sqlalchemy.exc import SQLAlchemyError

        from api.db import Database, normalize_db_url, safe_url, schema_revision, upgrade_schema

        try:
            url = normalize_db_url(args.db)
        except ValueError as error:
            raise InputError("--db", "", str(error)) from None
        db = Database(url)
        try:
            before = schema_revision(db.engine)
            upgrade_schema(db.engine)
            after = schema_revision(db.engine)
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            raise InputError("--db", "", f"cannot use {safe_url(url)}: {reason}") from None
        finally:
            db.dispose()
        print(f"{safe_url(url)}: schema {before or 'none'} -> {after}")
        return 0
