"""Scheduling policies: each decides, at a round, which queued jobs start now and where."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from broker.federation import Federation
from broker.jobs import Job
from broker.offers import RoundOffers
from broker.planner import Assignment, MilpPlanner, Plan, PlannerConfig


class Policy(ABC):
    """A scheduler run by the simulation loop; ``decide`` returns the jobs that start now."""

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        self.federation = federation
        self.config = config

    @abstractmethod
    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        """Assignments with ``start_offset == 0``; jobs not named stay queued."""


class MilpPolicy(Policy):
    """The broker: solve the allocation MILP over the horizon, start what it puts in slot 0."""

    def __init__(self, federation: Federation, config: PlannerConfig) -> None:
        super().__init__(federation, config)
        self.planner = MilpPlanner(federation, config)
        self.plans: list[Plan] = []

    def decide(self, offers: RoundOffers, queue: Sequence[Job]) -> Sequence[Assignment]:
        plan = self.planner.plan(offers, queue)
        self.plans.append(plan)
        return plan.starting_now
