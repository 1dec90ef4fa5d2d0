"""Offers: a site keeps its horizon current; every offer also renews the leases it lists.

An offer may claim no more GPUs of a type than the site's registered fleet, and its prices and
carbon intensities must lie within the site's bounds (the broker's settings unless an admin
narrowed them at enrolment); outside: 422 naming the slot and the bound.
"""

from __future__ import annotations

import math
from typing import cast

from sqlalchemy import Table, bindparam, insert, select, update

from api import mappers, schemas
from api.errors import ConflictError, FieldError, NotFoundError
from api.models import OfferRow, SiteRow
from api.services import leases
from api.services.context import Context
from api.states import SiteState

# The offer route's statements, built once (parameters by name at execution): sites put an
# offer every few seconds, so it skips the ORM (identity map, attribute events).
_OFFERS = cast(Table, OfferRow.__table__)
_COLUMNS = ("sequence", "start_h", "slot_h", "free_gpus", "price_usd_per_mwh",
            "carbon_g_per_kwh", "received_at_s", "holding")
OFFER_SITE = select(
    SiteRow.state, SiteRow.gpus, SiteRow.min_price_usd_per_mwh, SiteRow.max_price_usd_per_mwh,
    SiteRow.min_carbon_g_per_kwh, SiteRow.max_carbon_g_per_kwh,
).where(SiteRow.id == bindparam("where_site_id"))
OFFER_SEQUENCE = select(_OFFERS.c.sequence).where(_OFFERS.c.site_id == bindparam("where_site_id"))
OFFER_UPDATE = (
    update(_OFFERS)
    .where(_OFFERS.c.site_id == bindparam("where_site_id"),
           _OFFERS.c.sequence < bindparam("below_sequence"))
    .values({name: bindparam(name) for name in _COLUMNS})
)
OFFER_INSERT = insert(_OFFERS)


def _check_range(values: list[float], loc: str, low: float, high: float, unit: str) -> None:
    for i, value in enumerate(values):
        if value < low:
            raise FieldError(("body", loc, i), f"{value:g} is below the minimum {low:g} {unit}")
        if value > high:
            raise FieldError(("body", loc, i), f"{value:g} is above the maximum {high:g} {unit}")


class OfferService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

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
        with self.ctx.db.write_connection(soft=True) as c:
            site = c.execute(OFFER_SITE, {"where_site_id": site_id}).first()
            if site is None or site.state != SiteState.ACTIVE:
                raise NotFoundError(f"no active site '{site_id}'")
            for gpu, counts in body.free_gpus.items():
                fleet = site.gpus.get(gpu)
                if fleet is None:
                    raise FieldError(("body", "free_gpus", gpu),
                                     f"site '{site_id}' registered no {gpu} GPUs")
                if max(counts, default=0) > fleet:
                    raise FieldError(("body", "free_gpus", gpu),
                                     f"more than the {fleet} registered")
            _check_range(body.price_usd_per_mwh, "price_usd_per_mwh",
                         _or(site.min_price_usd_per_mwh, st.min_price_usd_per_mwh),
                         _or(site.max_price_usd_per_mwh, st.max_price_usd_per_mwh), "USD/MWh")
            _check_range(body.carbon_g_per_kwh, "carbon_g_per_kwh",
                         _or(site.min_carbon_g_per_kwh, st.min_carbon_g_per_kwh),
                         _or(site.max_carbon_g_per_kwh, st.max_carbon_g_per_kwh), "g/kWh")
            # Only a higher sequence may replace the stored offer: one conditional statement, so
            # two concurrent offers cannot both win and a late one cannot overwrite a newer one.
            changed = c.execute(
                OFFER_UPDATE, {"where_site_id": site_id, "below_sequence": body.sequence, **values}
            ).rowcount
            if changed == 0:
                current = c.scalar(OFFER_SEQUENCE, {"where_site_id": site_id})
                if current is not None:
                    raise ConflictError(
                        f"stale offer: sequence {body.sequence} is not above the stored "
                        f"{current}", current_sequence=current,
                    )
                c.execute(OFFER_INSERT, {"site_id": site_id, **values})
            _, revoked = leases.renew(c, site_id, holding, wall)
        return schemas.OfferOut(site_id=site_id, revoked=revoked, **values)

    def get(self, site_id: str) -> schemas.OfferOut:
        with self.ctx.db.read() as s:
            row = s.get(OfferRow, site_id)
            if row is None:
                raise NotFoundError(f"site '{site_id}' has no offer")
            return mappers.offer_out(row)

    def heartbeat(self, site_id: str, body: schemas.HeartbeatIn) -> schemas.HeartbeatOut:
        """Renew the listed leases without a new offer."""
        wall = self.ctx.clock.wall_s()
        with self.ctx.db.write() as s:
            row = s.get(SiteRow, site_id)
            if row is None or row.state != SiteState.ACTIVE:
                raise NotFoundError(f"no active site '{site_id}'")
            renewed, revoked = leases.renew(s, site_id, body.holding, wall)
        return schemas.HeartbeatOut(renewed=renewed, revoked=revoked)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value
