"""A federation restricted to a coalition of its sites: their GPUs, their jobs, their grids.

A coalition S serves only the jobs whose home is in S, with only the GPUs of S; jobs of sites
outside S are absent (DESIGN.md, "Coalition game").
"""

from __future__ import annotations

import dataclasses
from collections.abc import Collection

import numpy as np

from broker.federation import Federation
from broker.simulation import SimulationSetup


def restrict_federation(federation: Federation, site_ids: Collection[str]) -> Federation:
    """The same federation with only ``site_ids`` (in the federation's own order)."""
    unknown = set(site_ids) - set(federation.site_index)
    if unknown:
        raise KeyError(f"not sites of the federation: {', '.join(sorted(unknown))}")
    sites = tuple(s for s in federation.sites if s.id in site_ids)
    return dataclasses.replace(federation, sites=sites)


def restrict_setup(setup: SimulationSetup, site_ids: Collection[str]) -> SimulationSetup:
    """The run of coalition ``site_ids``: their sites, signals and home jobs only."""
    fed = setup.federation
    rows = np.array([fed.site_index[s.id] for s in fed.sites if s.id in site_ids], dtype=int)
    return dataclasses.replace(
        setup,
        federation=restrict_federation(fed, site_ids),
        jobs=tuple(j for j in setup.jobs if j.home_site in site_ids),
        carbon_g_per_kwh=setup.carbon_g_per_kwh[rows],
        price_usd_per_mwh=setup.price_usd_per_mwh[rows],
    )
