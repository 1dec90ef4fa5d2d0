"""Scheduling policies: each decides, at a round, which queued jobs start now and where."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import Assignment, MilpPlanner, Plan, PlannerConfig
from optimization import SolveStatus


class Policy(ABC):
    """A scheduler run by the simulation loop; ``decide`` returns the jobs that start now."""

    # True for policies that never move a job off its home site (isolated, temporal).
    home_only: bool = False
    # True for policies that may pause, move or resize running preemptible and elastic jobs:
    # the simulation hands those back in the queue at every round (``Job.state``)
    replans: bool = False

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        self.federation = federation
        self.config = config

    @abstractmethod
    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        """Assignments with ``start_offset == 0``; jobs not named stay queued."""

    def last_solve(self) -> tuple[SolveStatus, str] | None:
        """Status and message of the last round's solve (None: this policy solves nothing)."""
        return None

    def last_hit_wall_clock(self) -> bool:
        """The last round's solve was stopped by the solver's wall-clock safety net."""
        return False

    def reachable(self, jobs: Sequence[Job]) -> np.ndarray:
        """``[i, r]``: this policy may run job i on pool r at all."""
        fed = self.federation
        if not self.home_only:
            return np.ones((len(jobs), len(fed.resources)), dtype=bool)
        home = np.array([fed.site_index[j.home_site] for j in jobs], dtype=int)
        return fed.resource_site[None, :] == home[:, None]


class MilpPolicy(Policy):
    """The broker: solve the allocation MILP over the horizon, start what it puts in slot 0,
    and replan running preemptible and elastic jobs at every round."""

    replans = True

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        super().__init__(federation, config)
        self.planner = MilpPlanner(federation, config)
        self._last: Plan | None = None

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        self._last = self.planner.plan(offers, queue)
        return self._last.starting_now

    def last_solve(self) -> tuple[SolveStatus, str] | None:
        if self._last is None:
            return None
        return SolveStatus(self._last.status), self._last.message

    def last_hit_wall_clock(self) -> bool:
        return self._last is not None and self._last.wall_clock_hit
