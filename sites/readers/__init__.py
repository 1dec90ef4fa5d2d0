"""Readers for real data files: grid signals, GPU affinity and power, fleets, transfer costs.

One small module per file format. Every reader checks its input and raises
``sites.errors.InputError(source, field, problem)`` naming the file, the row or key and what is
wrong; none of them fills gaps or repairs values silently.
"""

from sites.readers.timeseries import Gap, TimeTable, find_gaps, resample_time_weighted

__all__ = ["Gap", "TimeTable", "find_gaps", "resample_time_weighted"]
