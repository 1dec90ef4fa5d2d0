"""Shared instances and checks for the optimization tests."""

from __future__ import annotations

import numpy as np

from optimization import AllocationProblem


def assert_feasible(p: AllocationProblem, x: np.ndarray, deferred: np.ndarray) -> None:
    """Counts balanced, GPUs within capacity in every cell, emissions under the cap."""
    assert (x >= 0).all() and (deferred >= 0).all()
    assigned = np.bincount(p.option_demand, weights=x, minlength=p.n_demands)
    assert (assigned + deferred == p.demand_count).all()
    options, resources, slots = p.occupancy()
    used = np.zeros_like(p.capacity_gpus)
    np.add.at(used, (resources, slots), p.option_gpus[options] * x[options])
    assert (used <= p.capacity_gpus + 1e-9).all()
    if p.carbon_cap_kg is not None:
        assert p.option_carbon_kg @ x <= p.carbon_cap_kg + 1e-9


def random_problem(seed: int, n_demands: int = 12, n_resources: int = 4, n_slots: int = 6,
                   carbon_cap_kg: float | None = None,
                   capacity_gpus: tuple[int, int] = (2, 6)) -> AllocationProblem:
    """A random round with binding capacity, multi-slot and multi-GPU options, some counts > 1.

    Vectorised: every demand gets a GPU count and, on each resource it may use (70%), a run
    length and an option at every start slot (clipped to the horizon). Free GPUs per cell are
    drawn from ``capacity_gpus`` (low inclusive, high exclusive).
    """
    rng = np.random.default_rng(seed)
    gpus_of = rng.choice([1, 2, 4], size=n_demands)
    usable = rng.random((n_demands, n_resources)) >= 0.3
    length = rng.integers(1, 4, size=(n_demands, n_resources))
    d, r = np.nonzero(usable)
    d, r = np.repeat(d, n_slots), np.repeat(r, n_slots)
    t = np.tile(np.arange(n_slots), len(d) // n_slots)
    slots = np.minimum(length[d, r], n_slots - t)
    n = len(d)
    cost = rng.uniform(1, 10, n)
    return AllocationProblem(
        capacity_gpus=rng.integers(*capacity_gpus, size=(n_resources, n_slots)).astype(float),
        demand_count=rng.integers(1, 3, size=n_demands),
        deferral_penalty_usd=np.full(n_demands, 40.0),
        option_demand=d, option_resource=r, option_start=t, option_slots=slots,
        option_gpus=gpus_of[d], option_energy_kwh=cost / 2, option_energy_cost_usd=cost,
        option_carbon_kg=rng.uniform(0, 5, n), option_transfer_cost_usd=np.zeros(n),
        option_delay_cost_usd=0.1 * t * gpus_of[d], carbon_price_usd_per_kg=0.1,
        carbon_cap_kg=carbon_cap_kg,
    )


def grid_of(p: AllocationProblem, seed: int | None = None):
    """The round ``p`` (``random_problem``'s: every (demand, resource) pair a run at every
    start, run-major) as an ``OptionGrid``, and the listed round it holds. With ``seed``, each
    run keeps a random number of its leading starts (as deadlines cut them), the listed round
    only those options."""
    from optimization.decomposed import OPTION_FIELDS, with_options
    from optimization.option_grid import OptionGrid

    n_slots = p.n_slots
    runs = p.n_options // n_slots
    assert (p.option_start.reshape(runs, n_slots) == np.arange(n_slots)).all()
    first = np.arange(runs) * n_slots
    run_starts = np.full(runs, n_slots)
    if seed is not None:
        run_starts = np.random.default_rng(seed).integers(0, n_slots + 1, size=runs)
    kept = np.flatnonzero(np.arange(n_slots)[None, :] < run_starts[:, None])
    listed = with_options(p, {name: getattr(p, name)[kept] for name in OPTION_FIELDS})

    def lister(index: np.ndarray) -> dict[str, np.ndarray]:
        return {name: getattr(p, name)[index] for name in OPTION_FIELDS}

    grid = OptionGrid(
        public=with_options(p, {name: getattr(p, name)[:0] for name in OPTION_FIELDS}),
        run_demand=p.option_demand[first], run_resource=p.option_resource[first],
        run_gpus=p.option_gpus[first], run_slots=p.option_slots[first],
        starts=np.arange(n_slots), run_starts=run_starts,
        cost_usd=p.option_cost_usd.reshape(runs, n_slots),
        carbon_kg=p.option_carbon_kg.reshape(runs, n_slots), lister=lister)
    return grid, listed, kept
