"""The live broker's services, one per resource, over one database.

Handlers stay thin and call these; services own the transactions. Every change a request asks
for is committed before the request is answered. Invariants:

* a job has at most one live assignment (``api.states.LIVE``): a round claims a job with
  ``UPDATE ... WHERE status = 'queued'``, and an assignment leaves the live set only by being
  completed or requeued, which puts its job back in the queue in the same transaction;
* an offer replaces the stored one only if its sequence is higher (conditional update);
* planning uses ``broker.planner.MilpPlanner`` (through ``broker.live.anytime_plan``) on the
  federation and offers ``broker.live`` builds from the database, as the simulator does.
"""

from __future__ import annotations

from dataclasses import dataclass

from api.clock import Clock
from api.db import Database, read_meta, upgrade_schema, write_meta
from api.services.assignments import AssignmentService
from api.services.context import Context
from api.services.jobs import JobService
from api.services.offers import ClaimsCache, OfferService
from api.services.planning import PlanningService
from api.services.sites import SiteService
from api.services.summary import SummaryService
from api.services.tokens import Principal, TokenService
from api.settings import Settings

CLOCK_ORIGIN_KEY = "clock_origin_s"

__all__ = ["Principal", "Services"]


@dataclass(frozen=True)
class Services:
    ctx: Context
    tokens: TokenService
    sites: SiteService
    offers: OfferService
    jobs: JobService
    assignments: AssignmentService
    planning: PlanningService
    summary: SummaryService

    @classmethod
    def build(cls, db: Database, settings: Settings, clock: Clock | None = None) -> Services:
        ctx = Context(db, settings, clock or Clock(settings.time_scale))
        tokens, claims = TokenService(ctx), ClaimsCache()
        return cls(ctx, tokens, SiteService(ctx, tokens, claims), OfferService(ctx, claims),
                   JobService(ctx), AssignmentService(ctx), PlanningService(ctx),
                   SummaryService(ctx))

    def start(self, may_generate_admin_token: bool = True) -> str | None:
        """Migrate the schema, restore the clock, settle the admin token.

        Returns a newly generated admin token (to show once), or None. Raises
        ``NoAdminTokenError`` when none is configured or stored and none may be generated.
        """
        upgrade_schema(self.ctx.db.engine)
        with self.ctx.db.write() as s:
            origin = read_meta(s, CLOCK_ORIGIN_KEY)
            if origin is None:
                origin = repr(self.ctx.clock.wall_s())
                write_meta(s, CLOCK_ORIGIN_KEY, origin)
            self.ctx.clock.origin_s = float(origin)
        generated = self.tokens.settle_admin_token(may_generate_admin_token)
        self.tokens.warm()
        return generated

    def close(self) -> None:
        self.planning.close()
