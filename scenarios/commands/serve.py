"""``carbonfed serve``: start the live broker (FastAPI under uvicorn)."""

from __future__ import annotations

import argparse
import gc

from scenarios.commands.base import Command
from sites import InputError


class ServeCommand(Command):
    help = "start the live broker's REST API (SQLite file by default, PostgreSQL by URL)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--db", help="database URL (default: sqlite:///carbonfed.db, "
                            "or CARBONFED_DB_URL); postgresql://... for PostgreSQL")
        parser.add_argument("--host", default="127.0.0.1", help="address to bind (127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="port (8000)")
        parser.add_argument("--plan-interval-s", type=float,
                            help="plan on this schedule (default: only when an admin asks)")
        parser.add_argument("--stale-after-s", type=float,
                            help="a site without a newer offer is stale after this (300)")
        parser.add_argument("--time-scale", type=float,
                            help="broker clock speed: simulated hours per real hour (1)")
        parser.add_argument("--log-level", default="warning", help="uvicorn log level")
        parser.add_argument("--keep-alive-s", type=int, default=75,
                            help="close a client's idle connection after this (75; uvicorn's "
                            "5 s races an agent that sends every 5 s on the same connection)")
        parser.add_argument("--access-log", action="store_true",
                            help="log every request (with --log-level info); off by default: "
                            "it costs every request time, and sites put offers every few seconds")

    def run(self, args: argparse.Namespace) -> int:
        import uvicorn  # heavy imports only for this command
        from pydantic import ValidationError

        from api.app import create_app
        from api.db import Database
        from api.service import BrokerService
        from api.settings import Settings

        try:
            settings = Settings.from_env(
                db_url=args.db, plan_interval_s=args.plan_interval_s,
                stale_after_s=args.stale_after_s, time_scale=args.time_scale,
            )
        except ValidationError as error:
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise InputError("settings", field, first["msg"]) from None
        # Create or migrate the schema and settle the admin token before serving, so a token
        # generated now is printed once, here, and stored hashed for later starts.
        db = Database(settings.db_url)
        try:
            generated = BrokerService(db, settings).start()
        finally:
            db.dispose()
        if generated is not None:
            print(f"admin token (shown once; set CARBONFED_ADMIN_TOKEN to choose one): {generated}",
                  flush=True)
        print(f"carbonfed broker on http://{args.host}:{args.port} (docs: /docs), "
              f"database {settings.db_url}", flush=True)
        app = create_app(settings)
        # Everything so far (imports, the app) lives as long as the process: keep it out of the
        # garbage collector's full passes, which otherwise walk it all and stall every request
        # in flight (about 100 ms each on the 2-core development machine).
        gc.collect()
        gc.freeze()
        uvicorn.run(app, host=args.host, port=args.port,
                    log_level=args.log_level, access_log=args.access_log,
                    timeout_keep_alive=args.keep_alive_s)
        return 0
