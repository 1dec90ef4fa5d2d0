"""The offer's conditional upsert, statement by statement, on SQLite and PostgreSQL.

An offer is stored by one guarded statement (``api.services.offers.OFFER_UPSERT``) outside
any transaction on PostgreSQL, so its guards are its only protection against a concurrent
newer offer or a concurrent disabling of the site: each is checked here on its own.
"""

from __future__ import annotations

from sqlalchemy import update

from api.db import Database, upgrade_schema
from api.models import OfferRow, SiteRow
from api.services.offers import OFFER_UPSERT
from api.states import SiteState


def _site(db: Database, site_id: str, state: SiteState) -> None:
    with db.write() as s:
        s.add(SiteRow(id=site_id, number=1 if site_id == "north" else 2, zone="z",
                      gpus={"V100": 4}, pue=1.2, egress_usd_per_gb=0.0, state=state,
                      registered_at_s=0.0))


def _offer(sequence: int) -> dict:
    return dict(sequence=sequence, start_h=0.0, slot_h=1.0, free_gpus={"V100": [4, 3]},
                price_usd_per_mwh=[50.0, 60.0], carbon_g_per_kwh=[300.0, 250.0],
                received_at_s=float(sequence), holding=[7])


def _put(db: Database, site_id: str, sequence: int) -> int | None:
    with db.soft_write() as c:
        return c.scalar(OFFER_UPSERT[c.dialect.name], {"site_id": site_id, **_offer(sequence)})


def test_only_a_newer_offer_of_an_active_site_is_stored(db_url):
    db = Database(db_url)
    try:
        upgrade_schema(db.engine)
        _site(db, "north", SiteState.ACTIVE)
        _site(db, "south", SiteState.DISABLED)
        assert _put(db, "north", 5) == 5  # the first: inserted
        assert _put(db, "north", 5) is None  # not above the stored one
        assert _put(db, "north", 4) is None
        assert _put(db, "north", 6) == 6  # newer: replaces
        assert _put(db, "south", 1) is None  # a disabled site stores nothing
        with db.write() as s:
            s.execute(update(SiteRow).where(SiteRow.id == "north")
                      .values(state=SiteState.DISABLED))
        assert _put(db, "north", 7) is None  # nor does one disabled since its last offer
        with db.read() as s:
            stored = {o.site_id: o for o in s.query(OfferRow)}
            assert list(stored) == ["north"]
            north = stored["north"]
            assert (north.sequence, north.received_at_s, north.holding) == (6, 6.0, [7])
            assert north.free_gpus == {"V100": [4, 3]}
            assert north.price_usd_per_mwh == [50.0, 60.0]
    finally:
        db.dispose()
