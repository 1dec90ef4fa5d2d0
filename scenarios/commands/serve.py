"""``carbonfed serve``: start the live broker (FastAPI under uvicorn).

Every setting of ``api.settings.Settings`` is a flag here (``--solver-time-limit-s``...) and an
environment variable (``CARBONFED_SOLVER_TIME_LIMIT_S``); flags win. Bad settings, a database
URL that cannot be used or a port that is taken are one line each and exit 2, checked before
anything is created or printed.
"""

from __future__ import annotations

import argparse
import gc
import signal
import socket
import ssl
import sys
from pathlib import Path
from typing import Any

from scenarios.commands.base import Command
from sites import InputError

ALIASES = {"db_url": ["--db"]}  # the short flag the README always used
GC_THRESHOLDS = (10_000, 10, 10)  # the interpreter's default: (700, 10, 10)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_port(host: str, port_text: str) -> int:
    """The port as a number, if it is one and nothing listens on it (one-line errors)."""
    try:
        port = int(port_text)
    except ValueError:
        raise InputError("--port", "", f"not a port number: {port_text!r}") from None
    if not 1 <= port <= 65535:
        raise InputError("--port", "", f"{port} is not in 1..65535")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise InputError("--host", "", f"cannot resolve {host!r}: {error.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        # as uvicorn binds: with SO_REUSEADDR, so only a live listener makes this fail
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as error:
            raise InputError("--port", "", f"cannot listen on {host}:{port}: "
                             f"{error.strerror}") from None
    return port


def check_tls(cert: Path | None, key: Path | None) -> None:
    """Both TLS files or neither, each a readable file (one-line errors)."""
    if (cert is None) != (key is None):
        raise InputError("--tls-cert / --tls-key", "", "give both, or neither")
    for flag, path in (("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not path.is_file():
            raise InputError(flag, "", f"no such file: {path}")
    if cert is not None:  # as uvicorn will load them, so a bad pair is one line, not a trace
        try:
            ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
        except ssl.SSLError as error:
            raise InputError("--tls-cert / --tls-key", "", f"cannot load the certificate "
                             f"and key: {error.reason or error}") from None


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, remembering the signal that stopped it (None: none did)."""

        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame: Any) -> None:
            self.stopped_by = sig
            super().handle_exit(sig, frame)

    return Server


class ServeCommand(Command):
    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from api.settings import Settings

        parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
        parser.add_argument("--port", default="8000", help="port (8000)")
        for name, field in Settings.model_fields.items():
            flags = [*ALIASES.get(name, []), _flag(name)]
            default = field.default
            shown = "none" if default is None else default
            text = f"{field.description or name} (env CARBONFED_{name.upper()}; default {shown})"
            if field.annotation is bool:  # --name and --no-name (a default may be true)
                parser.add_argument(*flags, dest=name, action=argparse.BooleanOptionalAction,
                                    default=None, help=text)
            else:
                parser.add_argument(*flags, dest=name, default=None, metavar="VALUE", help=text)
        parser.add_argument("--log-level", default="warning", help="uvicorn log level")
        parser.add_argument("--keep-alive-s", type=int, default=75,
                            help="close a client's idle connection after this (75; uvicorn's "
                            "5 s races an agent that sends every 5 s on the same connection)")
        parser.add_argument("--tls-cert", type=Path, help="serve HTTPS with this certificate "
                            "(PEM; with --tls-key): needed whenever the broker is reachable "
                            "beyond this machine, tokens travel in every request")
        parser.add_argument("--tls-key", type=Path, help="the certificate's private key (PEM)")
        parser.add_argument("--header-timeout-s", type=float, default=10.0,
                            help="close a connection whose request head has not arrived within "
                            "this (10; api.protocol)")
        parser.add_argument("--limit-concurrency", type=int, default=4096,
                            help="connections and requests in flight at once before new ones "
                            "get 503 (4096; uvicorn's limit_concurrency; keep it above the "
                            "number of agents, each keeps a connection open)")
        parser.add_argument("--graceful-timeout-s", type=float, default=10.0,
                            help="on SIGTERM or Ctrl-C, wait at most this for requests in "
                            "flight, then stop (10; uvicorn's timeout_graceful_shutdown)")
        parser.add_argument("--access-log", action="store_true",
                            help="log every request (with --log-level info); off by default: "
                            "it costs every request time, and sites put offers every few seconds")

    def settings(self, args: argparse.Namespace) -> Any:
        from pydantic import ValidationError

        from api.db import normalize_db_url
        from api.settings import Settings

        given = {name: getattr(args, name) for name in Settings.model_fields
                 if getattr(args, name, None) is not None}

        try:
            settings = Settings(**given)
        except ValidationError as error:
            first = error.errors()[0]
            name = str(first["loc"][0]) if first["loc"] else ""
            where = f"{_flag(name)} / CARBONFED_{name.upper()}" if name else "settings"
            raise InputError(where, "", first["msg"].removeprefix("Value error, ")) from None
        if args.admin_token is not None:  # valid, yet seen by every user of the machine
            print("warning: --admin-token shows in the process list; prefer "
                  "CARBONFED_ADMIN_TOKEN or --admin-token-file", file=sys.stderr, flush=True)
        try:
            url = normalize_db_url(settings.db_url)
        except ValueError as error:
            raise InputError("--db", "", str(error)) from None
        return settings.model_copy(update={"db_url": url})

    def run(self, args: argparse.Namespace) -> int:
        import uvicorn  # heavy imports only for this command
        from sqlalchemy.exc import SQLAlchemyError

        from api.app import create_app
        from api.db import Database, safe_url, stored_meta
        from api.protocol import header_timeout_protocol
        from api.services import Services
        from api.services.tokens import ADMIN_HASH_KEY, NoAdminTokenError

        settings = self.settings(args)
        check_tls(args.tls_cert, args.tls_key)
        port = check_port(args.host, args.port)  # before the database exists or a token prints
        terminal = sys.stdout.isatty()
        try:
            # refused before the database is made: a refused start leaves no file behind
            if (settings.admin_token is None and not terminal
                    and stored_meta(settings.db_url, ADMIN_HASH_KEY) is None):
                raise NoAdminTokenError("no admin token")
            db = Database(settings.db_url)
            try:
                generated = Services.build(db, settings).start(may_generate_admin_token=terminal)
            finally:
                db.dispose()
        except NoAdminTokenError:
            raise InputError("admin token", "", "none set or stored: set CARBONFED_ADMIN_TOKEN "
                             "(>= 32 bytes of entropy), or start once on a terminal to have one "
                             "generated and shown there (never in a log)") from None
        except SQLAlchemyError as error:
            reason = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
            where = safe_url(settings.db_url)
            raise InputError("--db", "", f"cannot use {where}: {reason}") from None
        if generated is not None:
            print(f"admin token: {generated}\n(shown once, on this terminal only; only its "
                  "hash is stored. Keep it, e.g. export CARBONFED_ADMIN_TOKEN=...)", flush=True)
        if settings.open_registration:
            print("warning: open registration: anyone can register a site with any fleet, "
                  "price and carbon (demos and tests only)", file=sys.stderr, flush=True)
        scheme = "https" if args.tls_cert is not None else "http"
        address = f"{scheme}://{args.host}:{port}"
        print(f"carbonfed broker on {address} (dashboard: {address}/dashboard, docs: "
              f"{address}/docs), database {safe_url(settings.db_url)}", flush=True)
        app = create_app(settings)
        # Everything so far (imports, the app) lives as long as the process: keep it out of the
        # garbage collector's full passes, which otherwise walk it all and stall every request
        # in flight (about 100 ms each on the 2-core development machine). And collect less
        # often: a request leaves little cyclic garbage, while at 200 requests a second the
        # default thresholds ran a full pass (50-100 ms over the connections' objects) every
        # few seconds.
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        server = _server_class()(uvicorn.Config(
            app, host=args.host, port=port, log_level=args.log_level,
            access_log=args.access_log, timeout_keep_alive=args.keep_alive_s,
            http=header_timeout_protocol(args.header_timeout_s),
            limit_concurrency=args.limit_concurrency,
            timeout_graceful_shutdown=args.graceful_timeout_s,
            ssl_certfile=args.tls_cert, ssl_keyfile=args.tls_key))
        server.run()
        if server.stopped_by == signal.SIGINT:
            # shut down gracefully; now end as every command ends on Ctrl-C (the CLI: 130)
            raise KeyboardInterrupt
        return 0
