"""Offers: a site keeps its horizon current; every offer also renews the leases it lists.

An offer may claim no more GPUs of a type than the site's registered fleet, and its prices and
carbon intensities must lie within the site's bounds (the broker's settings unless an admin
narrowed them at enrolment); outside: 422 naming the slot and the bound.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, cast

from sqlalchemy import Connection, Executable, Table, bindparam, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from api import mappers, schemas
from api.errors import ConflictError, FieldError, NotFoundError
from api.models import AssignmentRow, OfferRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.settings import Settings
from api.states import LIVE, SiteState

# The offer route's statements, built once (parameters by name at execution): sites put an
# offer every few seconds, so it skips the ORM (identity map, attribute events) and makes as
# few round trips to the database as it can (``Database.soft_write``).
_OFFERS = cast(Table, OfferRow.__table__)
_COLUMNS = ("sequence", "start_h", "slot_h", "free_gpus", "price_usd_per_mwh",
            "carbon_g_per_kwh", "received_at_s", "holding")
# the site's claims and state, and its stored sequence (an outer join: maybe no offer yet)
OFFER_SITE = select(
    SiteRow.state, SiteRow.gpus, SiteRow.min_price_usd_per_mwh, SiteRow.max_price_usd_per_mwh,
    SiteRow.min_carbon_g_per_kwh, SiteRow.max_carbon_g_per_kwh, _OFFERS.c.sequence,
).select_from(cast(Table, SiteRow.__table__).outerjoin(_OFFERS, _OFFERS.c.site_id == SiteRow.id)
              ).where(SiteRow.id == bindparam("where_site_id"))
OFFER_SEQUENCE = select(_OFFERS.c.sequence).where(_OFFERS.c.site_id == bindparam("where_site_id"))


def _offer_upsert(dialect_insert: Callable[[Table], Any]) -> Executable:
    """Store the offer if its site is active and it is new or newer than the stored one; one
    statement, whose RETURNING is empty otherwise. Conditional, so two concurrent offers
    cannot both win and a late one cannot overwrite a newer one; guarded by the site's state,
    so an offer racing the site's disabling is not stored for a disabled site."""
    names = ("site_id", *_COLUMNS)
    row = select(*(bindparam(n, type_=_OFFERS.c[n].type) for n in names)).where(exists().where(
        SiteRow.id == bindparam("site_id"), SiteRow.state == SiteState.ACTIVE))
    insert = dialect_insert(_OFFERS).from_select(names, row)
    return insert.on_conflict_do_update(
        index_elements=[_OFFERS.c.site_id], set_={n: insert.excluded[n] for n in _COLUMNS},
        where=_OFFERS.c.sequence < insert.excluded.sequence,
    ).returning(_OFFERS.c.sequence)


OFFER_UPSERT = {"sqlite": _offer_upsert(sqlite.insert),
                "postgresql": _offer_upsert(postgresql.insert)}


def _check_range(values: list[float], loc: str, low: float, high: float, unit: str) -> None:
    for i, value in enumerate(values):
        if value < low:
            raise FieldError(("body", loc, i), f"{value:g} is below the minimum {low:g} {unit}")
        if value > high:
            raise FieldError(("body", loc, i), f"{value:g} is above the maximum {high:g} {unit}")


class HasBounds(Protocol):
    min_price_usd_per_mwh: float | None
    max_price_usd_per_mwh: float | None
    min_carbon_g_per_kwh: float | None
    max_carbon_g_per_kwh: float | None


def effective_bounds(own: HasBounds, settings: Settings) -> tuple[tuple[float, float],
                                                                  tuple[float, float]]:
    """A site's (price USD/MWh, carbon g/kWh) bounds, each (low, high): its own where an admin
    set them at enrolment, else the broker's."""
    return ((_or(own.min_price_usd_per_mwh, settings.min_price_usd_per_mwh),
             _or(own.max_price_usd_per_mwh, settings.max_price_usd_per_mwh)),
            (_or(own.min_carbon_g_per_kwh, settings.min_carbon_g_per_kwh),
             _or(own.max_carbon_g_per_kwh, settings.max_carbon_g_per_kwh)))


@dataclass(frozen=True)
class Claims:
    """What an active site's offers may claim: no more GPUs of a type than its fleet, prices
    and carbon intensities within its bounds (the broker's settings where an admin set none
    at enrolment)."""

    gpus: dict[str, int]
    price_usd_per_mwh: tuple[float, float]
    carbon_g_per_kwh: tuple[float, float]

    def check(self, site_id: str, body: schemas.OfferIn) -> None:
        """Raise a FieldError (422) naming the first claim out of bounds."""
        for gpu, counts in body.free_gpus.items():
            fleet = self.gpus.get(gpu)
            if fleet is None:
                raise FieldError(("body", "free_gpus", gpu),
                                 f"site '{site_id}' registered no {gpu} GPUs")
            if max(counts, default=0) > fleet:
                raise FieldError(("body", "free_gpus", gpu), f"more than the {fleet} registered")
        _check_range(body.price_usd_per_mwh, "price_usd_per_mwh", *self.price_usd_per_mwh,
                     "USD/MWh")
        _check_range(body.carbon_g_per_kwh, "carbon_g_per_kwh", *self.carbon_g_per_kwh, "g/kWh")

    def check_held(self, body: schemas.OfferIn, held: dict[str, int]) -> None:
        """Free GPUs now (slot 0) plus the GPUs of the live assignments the offer lists as
        held must fit in the fleet: listing a job (which renews it and tells the planner its
        GPUs are already left out) while offering them free leased 16 GPUs on an 8-GPU site.
        A site may hold more than its fleet (jobs waiting there for GPUs); then it offers
        none. Later slots are not checked: a held job may end before them."""
        for gpu, n in sorted(held.items()):
            fleet = self.gpus.get(gpu, 0)
            free = body.free_gpus.get(gpu, [0])[0]
            if free > max(fleet - n, 0):
                raise FieldError(("body", "free_gpus", gpu), f"{free} free now plus {n} held "
                                 f"by the listed live assignments is more than the {fleet} "
                                 "registered")

    def admits(self, site_id: str, body: schemas.OfferIn, held: dict[str, int]) -> bool:
        try:
            self.check(site_id, body)
            self.check_held(body, held)
        except FieldError:
            return False
        return True


@dataclass(frozen=True)
class _Known:
    claims: Claims | None
    sequence: int | None  # the stored offer's, as this process last wrote or read it
    epoch: int  # the site's epoch when what it holds was read: stale once ``forget`` bumps it


class ClaimsCache:
    """Each active site's claims and stored offer sequence, as its last offer found them, so
    that an offer is one statement and an offer replayed with an old sequence none.

    ``SiteService`` forgets a site whenever they may change (enrolment, registration, a reset
    sequence) or its life ends, after the change commits. What an offer read before such a
    change is stored under the epoch it began in, and ``forget`` bumps the epoch, so it is
    never taken for current. Sequences only grow between forgets, so a remembered one is a
    lower bound of the stored one: an offer at or below it is stale for sure. An offer that
    does not fit the cached claims, or is not stored, reads the site again before it is
    refused, so a stale entry costs a read, never a wrong answer. One process: another
    broker process writing the same database would need this cache off."""

    def __init__(self) -> None:
        self._known: dict[str, _Known] = {}
        self._epochs: dict[str, int] = {}

    def epoch(self, site_id: str) -> int:
        return self._epochs.get(site_id, 0)

    def _current(self, site_id: str) -> _Known | None:
        known = self._known.get(site_id)
        return known if known is not None and known.epoch == self.epoch(site_id) else None

    def get(self, site_id: str) -> Claims | None:
        known = self._current(site_id)
        return None if known is None else known.claims

    def sequence(self, site_id: str) -> int | None:
        known = self._current(site_id)
        return None if known is None else known.sequence

    def put(self, site_id: str, epoch: int, *, claims: Claims | None = None,
            sequence: int | None = None) -> None:
        """Remember what an offer that began in ``epoch`` found (None: keep what is known)."""
        if epoch != self.epoch(site_id):
            return  # forgotten meanwhile: what the offer read may predate the change
        known = self._current(site_id)
        if known is not None:
            claims = known.claims if claims is None else claims
            sequence = known.sequence if sequence is None else max(sequence, known.sequence or 0)
        self._known[site_id] = _Known(claims, sequence, epoch)

    def forget(self, site_id: str) -> None:
        self._epochs[site_id] = self.epoch(site_id) + 1
        self._known.pop(site_id, None)


class OfferService:
    def __init__(self, ctx: Context, claims: ClaimsCache) -> None:
        self.ctx = ctx
        self.claims = claims

    def put(self, site_id: str, body: schemas.OfferIn) -> schemas.OfferOut:
        st = self.ctx.settings
        if not math.isclose(body.slot_h, st.slot_h):
            raise FieldError(("body", "slot_h"), f"must equal the broker's slot_h ({st.slot_h})")
        clock = self.ctx.clock
        wall = clock.wall_s()
        holding = sorted(set(body.holding))
        start_h = clock.hours_at(body.start.timestamp() if body.start is not None else wall)
        values = dict(
            sequence=body.sequence, start_h=start_h, slot_h=body.slot_h,
            free_gpus={g: list(v) for g, v in body.free_gpus.items()},
            price_usd_per_mwh=list(body.price_usd_per_mwh),
            carbon_g_per_kwh=list(body.carbon_g_per_kwh), received_at_s=wall,
            holding=holding,
        )
        upsert = {"site_id": site_id, **values}
        epoch = self.claims.epoch(site_id)
        cached = self.claims.get(site_id)
        known = self.claims.sequence(site_id)
        if known is not None and body.sequence <= known and cached is not None and (
                cached.admits(site_id, body, {})):
            raise _stale(body.sequence, known)  # a replay, refused without a statement
        with self.ctx.db.soft_write() as c:
            held = _held(c, site_id, holding)
            fits = cached is not None and cached.admits(site_id, body, held)
            # the common case, one statement (two when it holds jobs): claims cached and
            # fitting, the offer stored
            if not (fits and _upsert(c, upsert)):
                self._put_after_reading(c, site_id, body, upsert, epoch, held)
            _, revoked = leases.renew(c, site_id, holding, wall)
        self.claims.put(site_id, epoch, sequence=body.sequence)
        return schemas.OfferOut(site_id=site_id, revoked=revoked, **values)

    def _put_after_reading(self, c: Connection, site_id: str, body: schemas.OfferIn,
                           upsert: dict[str, Any], epoch: int, held: dict[str, int]) -> None:
        """Read the site (its claims for the first time, or why the offer was not stored),
        then store the offer or refuse it: 404 inactive, 422 beyond its claims, 409 stale."""
        site = c.execute(OFFER_SITE, {"where_site_id": site_id}).first()
        if site is None or site.state != SiteState.ACTIVE:
            self.claims.forget(site_id)
            raise NotFoundError(f"no active site '{site_id}'")
        claims = Claims(dict(site.gpus), *effective_bounds(site, self.ctx.settings))
        self.claims.put(site_id, epoch, claims=claims)
        claims.check(site_id, body)
        claims.check_held(body, held)
        stored = site.sequence
        if stored is None or stored < body.sequence:
            if _upsert(c, upsert):
                return
            # a concurrent newer offer, or the site's disabling, won the race
            stored = c.scalar(OFFER_SEQUENCE, {"where_site_id": site_id})
            if stored is None:
                raise NotFoundError(f"no active site '{site_id}'")
        self.claims.put(site_id, epoch, sequence=stored)
        raise _stale(body.sequence, stored)

    def get(self, site_id: str) -> schemas.OfferOut:
        with self.ctx.db.read() as s:
            row = s.get(OfferRow, site_id)
            if row is None:
                raise NotFoundError(f"site '{site_id}' has no offer")
            return mappers.offer_out(row)

    def heartbeat(self, site_id: str, body: schemas.HeartbeatIn) -> schemas.HeartbeatOut:
        """Renew the listed leases without a new offer, and show the site alive
        (``heartbeat_timeout_s``)."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            row = s.get(SiteRow, site_id)
            if row is None or row.state != SiteState.ACTIVE:
                raise NotFoundError(f"no active site '{site_id}'")
            renewed, revoked = leases.renew(s, site_id, body.holding, wall)
            s.execute(update(OfferRow).where(OfferRow.site_id == site_id)
                      .values(heartbeat_at_s=wall))  # alive (no offer yet: nothing to plan)
        return schemas.HeartbeatOut(renewed=renewed, revoked=revoked)


def _stale(sequence: int, stored: int) -> ConflictError:
    return ConflictError(f"stale offer: sequence {sequence} is not above the stored {stored}",
                         current_sequence=stored)


def _upsert(c: Connection, values: dict[str, Any]) -> bool:
    """Store an offer (``OFFER_UPSERT``); False if its site is not active or the stored offer
    is not older."""
    return c.execute(OFFER_UPSERT[c.dialect.name], values).first() is not None


def _held(c: Connection, site_id: str, holding: list[int]) -> dict[str, int]:
    """GPUs per type of the site's live assignments among ``holding`` (none listed: no
    statement)."""
    if not holding:
        return {}
    return {gpu: int(n) for gpu, n in c.execute(
        select(AssignmentRow.gpu_type, func.sum(AssignmentRow.gpus)).where(
            AssignmentRow.site_id == site_id, AssignmentRow.id.in_(holding),
            AssignmentRow.status.in_(LIVE)).group_by(AssignmentRow.gpu_type))}


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
