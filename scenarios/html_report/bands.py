"""The band a report draws around a mean across seeds, and the sentence that says what it is.

- 3 seeds or more: the 95% confidence interval of the mean (Student's t), cut at zero for a
  quantity that cannot be negative (emissions, energy, hours): the mean of such a quantity is
  not below zero, so the cut interval still holds it whenever the whole one did.
- 2 seeds: the range of the two runs (lowest to highest). With one degree of freedom the
  t-interval is 12.7 standard errors each side (t(0.975, 1) = 12.71): its width is set by the
  quantile, not by the runs, it reaches far below zero and hides the lines it should qualify.
  Two runs show their spread and no more; the tables still give the t half-width, with n.
- 1 seed: no band.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RANGE_BELOW = 3  # fewer seeds than this: draw the seeds' range, not the t-interval


@dataclass(frozen=True)
class Band:
    low: float
    high: float
    kind: str  # "ci", "range" or "none"


def band(mean: float, half_width: float, lowest: float, highest: float, seeds: int,
         non_negative: bool) -> Band:
    """The band drawn around ``mean`` of ``seeds`` runs (the rules in the module docstring)."""
    if seeds < 2 or math.isnan(half_width):
        return Band(mean, mean, "none")
    if seeds < RANGE_BELOW:
        return Band(lowest, highest, "range")
    low = mean - half_width
    return Band(max(low, 0.0) if non_negative else low, mean + half_width, "ci")


def band_sentence(seeds: list[int], per: str = "point") -> str:
    """What the bands of a figure are, for seed counts ``seeds`` (one per ``per``)."""
    few, most = min(seeds, default=0), max(seeds, default=0)
    n = f"{few}" if few == most else f"{few} to {most}"
    parts = [f"{n} seed(s) per {per}."]
    if most >= RANGE_BELOW:
        parts.append(f"With {RANGE_BELOW} or more seeds the band is the 95% confidence interval "
                     "of the mean (Student's t), cut at zero for quantities that cannot be "
                     "negative.")
    if 2 in seeds:
        parts.append("With 2 seeds the band is the range of the two runs, not a confidence "
                     "interval: a 95% t-interval from 2 runs is 12.7 standard errors wide each "
                     "side (the tables give it); run 3 or more seeds for an interval.")
    if few < 2:
        parts.append("With 1 seed there is no band.")
    return " ".join(parts)
