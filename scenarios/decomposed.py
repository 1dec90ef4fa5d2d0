"""The decomposed LP (``optimization.decomposed``) with its shards on Dask workers.

Each shard (a site's options and costs) is scattered once to one worker and stays there for
the whole solve (one future per shard, released on exit); every pricing round then submits one
task per shard that carries only the duals, runs on the worker holding the shard, and sends back
the shard's per-demand minima and the few columns it offers. The shard's cached layout and
demand groups are built on the worker at its first round and kept with it.

Shards are dealt to the workers round-robin, so with more shards than workers a worker prices
several one after the other: the same shards, the same rounds and the same LP whatever the
number of workers, which is what makes ``bench/allocation.py --decomposed-workers`` a measure
of the speed-up alone.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
from distributed import Client, Future

from optimization.decomposed import Duals, Shard, ShardOffer, price_shard, shard_cells


class DaskPricers:
    """Shards held on the workers of ``client`` (``optimization.decomposed.ShardPricers``)."""

    def __init__(self, client: Client, shards: Sequence[Shard]) -> None:
        self.client = client
        workers = sorted(client.nthreads())
        if not workers:
            raise RuntimeError("the Dask cluster has no worker to hold the shards")
        self.placement = [workers[k % len(workers)] for k in range(len(shards))]
        # hash=False: the shards are large and unique; tokenising them would cost a pass over
        # every array for nothing.
        self.futures: list[Future] = [
            client.scatter(shard, workers=[worker], hash=False)
            for shard, worker in zip(shards, self.placement, strict=True)]

    def _on_holders(self, fn, *args) -> list:
        futures = [self.client.submit(fn, shard, *args, workers=[worker],
                                      allow_other_workers=False, pure=False)
                   for shard, worker in zip(self.futures, self.placement, strict=True)]
        try:
            return list(self.client.gather(futures))
        except BaseException:
            self.client.cancel(futures)
            raise

    def cells(self) -> list[np.ndarray]:
        return self._on_holders(shard_cells)

    def price(self, duals: Duals, k: int) -> list[ShardOffer]:
        return self._on_holders(price_shard, duals, k)

    def release(self) -> None:
        self.client.cancel(self.futures)
        self.futures = []


@contextmanager
def dask_pricers(client: Client, shards: Sequence[Shard]) -> Iterator[DaskPricers]:
    """The shards scattered to the workers of ``client`` for one solve, released after it."""
    pricers = DaskPricers(client, shards)
    try:
        yield pricers
    finally:
        pricers.release()
