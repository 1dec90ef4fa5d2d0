"""Sites: enrolment by an admin, registration, listing, and the admin's life-cycle actions.

Registration is closed unless ``open_registration`` is set: an admin enrols a site (id, zone,
fleet, optional bounds) and hands its operator a one-time enrolment token; the agent registers
with it and receives its site token. The enrolled fleet bounds every later offer.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping

from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from api import mappers, schemas
from api.errors import ConflictError, FieldError, ForbiddenError, NotFoundError, UnauthorizedError
from api.models import OfferRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.services.offers import ClaimsCache, effective_bounds
from api.services.tokens import TokenService, new_token, token_hash
from api.states import SiteState

CLOSED = ("registration is closed: an admin enrols the site first (carbonfed admin enrol) and "
          "the agent registers with its enrolment token")
BOUND_FIELDS = ("min_price_usd_per_mwh", "max_price_usd_per_mwh", "min_carbon_g_per_kwh",
                "max_carbon_g_per_kwh")


class SiteService:
    def __init__(self, ctx: Context, tokens: TokenService, claims: ClaimsCache) -> None:
        self.ctx = ctx
        self.tokens = tokens
        self.claims = claims  # the offers' cache of each site's fleet and bounds

    def _forget(self, site_id: str) -> None:
        """A site's token or claims may have changed or ended: drop what is cached."""
        self.tokens.forget(site_id)
        self.claims.forget(site_id)

    def _out(self, row: SiteRow, offer: OfferRow | None, wall_s: float) -> schemas.SiteOut:
        return mappers.site_out(row, offer, wall_s, self.ctx.settings.stale_after_s)

    def _check_fleet(self, gpus: Mapping[str, int], loc: tuple[str, ...]) -> None:
        for gpu in gpus:
            if not self.ctx.known_gpu(gpu):
                raise FieldError((*loc, gpu), f"unknown GPU type '{gpu}' "
                                 f"(known: {', '.join(self.ctx.gpu_catalog)})")
        if sum(gpus.values()) == 0:
            raise FieldError(loc, "a site needs at least one GPU")

    def _check_bounds(self, bounds: schemas.ClaimBounds) -> None:
        """Per-site bounds may only narrow the broker's."""
        st = self.ctx.settings
        (lo_p, hi_p), (lo_c, hi_c) = effective_bounds(bounds, st)
        checks = (("min_price_usd_per_mwh", lo_p, st.min_price_usd_per_mwh, hi_p),
                  ("max_price_usd_per_mwh", hi_p, lo_p, st.max_price_usd_per_mwh),
                  ("min_carbon_g_per_kwh", lo_c, st.min_carbon_g_per_kwh, hi_c),
                  ("max_carbon_g_per_kwh", hi_c, lo_c, st.max_carbon_g_per_kwh))
        for name, value, low, high in checks:
            if not low <= value <= high:
                raise FieldError(("body", "bounds", name),
                                 f"{value:g} is outside [{low:g}, {high:g}]")

    # --- admin: enrolment and life cycle ---------------------------------------------------

    def enrol(self, body: schemas.EnrolmentIn) -> schemas.Enrolled:
        """Enrol a new site, or re-enrol a disabled or deregistered one (admin only)."""
        self._check_fleet(body.gpus, ("body", "gpus"))
        self._check_bounds(body.bounds)
        token = new_token()
        wall = self.ctx.clock.wall_s()
        values = dict(
            zone=body.zone, gpus=dict(body.gpus), pue=body.pue,
            egress_usd_per_gb=body.egress_usd_per_gb,
            token_sha256=None, state=SiteState.ENROLLED, enrol_token_sha256=token_hash(token),
            registered_at_s=wall, deregistered_at_s=None,
            **{f: getattr(body.bounds, f) for f in BOUND_FIELDS},
        )
        try:
            with self.ctx.db.write() as s:
                row = s.get(SiteRow, body.id)
                if row is None:
                    _check_id_free(s, body.id)
                    number = (s.scalar(select(func.max(SiteRow.number))) or 0) + 1
                    row = SiteRow(id=body.id, number=number, **values)
                    s.add(row)
                elif row.state in (SiteState.DISABLED, SiteState.DEREGISTERED):
                    for key, value in values.items():
                        setattr(row, key, value)
                    s.execute(delete(OfferRow).where(OfferRow.site_id == body.id))
                else:
                    raise ConflictError(f"site '{body.id}' is {row.state}; disable or "
                                        "deregister it before enrolling it again")
                s.flush()
                out = self._out(row, None, wall)
        except IntegrityError:
            raise ConflictError(f"site '{body.id}' is already enrolled") from None
        self._forget(body.id)
        return schemas.Enrolled(site=out, enrolment_token=token)

    def _admin_change(self, site_id: str, allowed: tuple[SiteState, ...], what: str,
                      change: Callable[[Session, SiteRow, float], None]) -> schemas.SiteOut:
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise NotFoundError(f"no site '{site_id}'")
            if row.state not in allowed:
                raise ConflictError(f"cannot {what} site '{site_id}': it is {row.state}")
            change(s, row, wall)
            out = self._out(row, s.get(OfferRow, site_id), wall)
        self._forget(site_id)
        return out

    def disable(self, site_id: str) -> schemas.SiteOut:
        """Token refused, offer dropped, live jobs requeued; ``enable`` brings it back."""
        def change(s: Session, row: SiteRow, wall: float) -> None:
            row.state = SiteState.DISABLED
            s.execute(delete(OfferRow).where(OfferRow.site_id == row.id))
            leases.requeue_site(s, row.id, wall, leases.SITE_DISABLED)
        return self._admin_change(site_id, (SiteState.ACTIVE,), "disable", change)

    def enable(self, site_id: str) -> schemas.SiteOut:
        def change(s: Session, row: SiteRow, wall: float) -> None:
            row.state = SiteState.ACTIVE if row.token_sha256 else SiteState.ENROLLED
        return self._admin_change(site_id, (SiteState.DISABLED,), "enable", change)

    def reset_sequence(self, site_id: str) -> schemas.SiteOut:
        """Forget the stored offer, so the site's next offer may start at any sequence."""
        def change(s: Session, row: SiteRow, wall: float) -> None:
            s.execute(delete(OfferRow).where(OfferRow.site_id == row.id))
        return self._admin_change(site_id, (SiteState.ACTIVE, SiteState.DISABLED),
                                  "reset the sequence of", change)

    def rotate_token(self, site_id: str) -> schemas.SiteRegistered:
        """A new site token (an enrolled site: a new enrolment token); the old one dies."""
        token = new_token()

        def change(s: Session, row: SiteRow, wall: float) -> None:
            if row.state == SiteState.ENROLLED:
                row.enrol_token_sha256 = token_hash(token)
            else:
                row.token_sha256 = token_hash(token)
        site = self._admin_change(site_id, (SiteState.ACTIVE, SiteState.DISABLED,
                                            SiteState.ENROLLED), "rotate the token of", change)
        return schemas.SiteRegistered(site=site, token=token)

    # --- a site registers ------------------------------------------------------------------

    def register(self, body: schemas.SiteRegistration,
                 token: str | None) -> schemas.SiteRegistered:
        if self.ctx.settings.open_registration and token is None:
            return self._register_open(body)
        if token is None:
            raise UnauthorizedError(CLOSED)
        site_token = new_token()
        wall = self.ctx.clock.wall_s()
        digest = token_hash(token)
        with self.ctx.db.write() as s:
            row = s.scalars(select(SiteRow).where(SiteRow.enrol_token_sha256 == digest)).first()
            if row is None or row.enrol_token_sha256 is None or not hmac.compare_digest(
                    row.enrol_token_sha256, digest):
                raise UnauthorizedError("unknown or used enrolment token")
            if row.id != body.id:
                raise ForbiddenError(f"this enrolment token is for site '{row.id}'")
            if body.zone != row.zone:
                raise FieldError(("body", "zone"), f"site '{row.id}' was enrolled in zone "
                                 f"'{row.zone}'")
            self._check_fleet(body.gpus, ("body", "gpus"))
            for gpu, n in body.gpus.items():
                if n > row.gpus.get(gpu, 0):
                    raise FieldError(("body", "gpus", gpu), f"{n} is more than the "
                                     f"{row.gpus.get(gpu, 0)} enrolled")
            row.gpus = {g: n for g, n in body.gpus.items() if n}
            row.token_sha256 = token_hash(site_token)
            row.enrol_token_sha256 = None  # one time only
            row.state = SiteState.ACTIVE
            out = self._out(row, None, wall)
            self.tokens.remember(row.id, site_token)
        self.claims.forget(body.id)  # its fleet is what it registers now
        return schemas.SiteRegistered(site=out, token=site_token)

    def _register_open(self, body: schemas.SiteRegistration) -> schemas.SiteRegistered:
        self._check_fleet(body.gpus, ("body", "gpus"))
        token = new_token()
        wall = self.ctx.clock.wall_s()
        try:
            with self.ctx.db.write() as s:
                if s.get(SiteRow, body.id) is not None:
                    raise ConflictError(f"site '{body.id}' is already registered")
                _check_id_free(s, body.id)
                number = (s.scalar(select(func.max(SiteRow.number))) or 0) + 1
                row = SiteRow(
                    id=body.id, number=number, zone=body.zone, gpus=dict(body.gpus),
                    pue=body.pue, egress_usd_per_gb=body.egress_usd_per_gb,
                    token_sha256=token_hash(token), state=SiteState.ACTIVE,
                    registered_at_s=wall,
                )
                s.add(row)
                s.flush()
                out = self._out(row, None, wall)
                self.tokens.remember(row.id, token)
        except IntegrityError:  # a concurrent registration of the same id won the race
            raise ConflictError(f"site '{body.id}' is already registered") from None
        return schemas.SiteRegistered(site=out, token=token)

    # --- reading and leaving ---------------------------------------------------------------

    def list(self) -> list[schemas.SiteOut]:
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.read() as s:
            offers = {o.site_id: o for o in s.scalars(select(OfferRow))}
            rows = s.scalars(select(SiteRow).order_by(SiteRow.number))
            return [self._out(r, offers.get(r.id), wall) for r in rows]

    def get(self, site_id: str) -> schemas.SiteOut:
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.read() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise NotFoundError(f"no site '{site_id}'")
            return self._out(row, s.get(OfferRow, site_id), wall)

    def deregister(self, site_id: str) -> schemas.SiteOut:
        """The site leaves: token revoked, offer dropped, unfinished jobs requeued."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            row = s.get(SiteRow, site_id)
            if row is None:
                raise NotFoundError(f"no site '{site_id}'")
            if row.state != SiteState.DEREGISTERED:
                row.state = SiteState.DEREGISTERED
                row.token_sha256 = None
                row.enrol_token_sha256 = None
                row.deregistered_at_s = wall
                s.execute(delete(OfferRow).where(OfferRow.site_id == site_id))
                leases.requeue_site(s, site_id, wall, leases.SITE_LEFT)
            out = self._out(row, None, wall)
        self._forget(site_id)
        return out


def _check_id_free(s: Session, site_id: str) -> None:
    """Site ids are compared without case: 'North' beside 'north' would pass for it in every
    listing and log."""
    other = s.scalar(select(SiteRow.id).where(func.lower(SiteRow.id) == site_id.lower()))
    if other is not None:
        raise ConflictError(f"site '{site_id}' conflicts with site '{other}' (site ids are "
                            "compared without case)")
