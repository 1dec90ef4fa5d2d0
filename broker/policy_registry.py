"""Every scheduling policy by the name scenarios and the CLI use."""

from __future__ import annotations

from broker.baselines import BASELINES
from broker.policies import MilpPolicy, Policy

POLICIES: dict[str, type[Policy]] = {"milp": MilpPolicy, **BASELINES}
