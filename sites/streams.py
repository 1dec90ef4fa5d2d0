"""Random streams: one ``numpy.random.SeedSequence`` per run, one named child per consumer.

A consumer's stream depends only on the run's seed and its own name, never on how many draws
another consumer made: adding noise to one zone's signal leaves the workload and every other
zone exactly as they were.
"""

from __future__ import annotations

import zlib

import numpy as np


def child_seed(root: np.random.SeedSequence, name: str) -> np.random.SeedSequence:
    """The child of ``root`` named ``name`` (a stable 32-bit key, like ``spawn`` but by name)."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.SeedSequence(root.entropy, spawn_key=(*root.spawn_key, key))


def stream(seed: int | np.random.SeedSequence, name: str) -> np.random.Generator:
    """The generator of consumer ``name`` under ``seed``."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return np.random.default_rng(child_seed(root, name))


def child_int(seed: int | np.random.SeedSequence, name: str) -> int:
    """A 62-bit integer seed for consumers that keep an int (they seed per round from it)."""
    root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    return int(child_seed(root, name).generate_state(1, np.uint64)[0] >> np.uint64(2))
