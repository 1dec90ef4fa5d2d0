"""The broker's clock: hours since its first start, optionally faster than real time.

Wall-clock seconds (UNIX) decide staleness; the planner works in broker hours. The origin is
stored in the database at the first start so a restarted broker continues the same clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sites.units import SECONDS_PER_HOUR


@dataclass
class Clock:
    time_scale: float = 1.0
    wall: Callable[[], float] = field(default=time.time)
    origin_s: float | None = None  # set by the service from the database at start-up

    def wall_s(self) -> float:
        return self.wall()

    def hours_at(self, wall_s: float) -> float:
        if self.origin_s is None:
            raise RuntimeError("clock origin not set (the service has not started)")
        return (wall_s - self.origin_s) * self.time_scale / SECONDS_PER_HOUR

    def wall_seconds(self, hours: float) -> float:
        """How many wall-clock seconds ``hours`` of the broker's clock last."""
        return hours * SECONDS_PER_HOUR / self.time_scale

    def now_h(self) -> float:
        return self.hours_at(self.wall_s())
