"""Coalition values in batches (``scenarios.market_tasks``): the same values, in order, in fewer
tasks."""

from __future__ import annotations

import pytest

from market.analysis import all_coalitions
from market.valuation import VALUATIONS, Valuation
from scenarios.build import build_run
from scenarios.loader import load_scenario
from scenarios.market_tasks import (
    MAX_BATCH,
    TASKS_PER_SLOT,
    ExecutorEvaluate,
    ScenarioRef,
    batch_size,
    strided,
    unstrided,
)
from scenarios.scaleout import InProcessExecutor
from tests.broker.test_outside import SCENARIO as THREE_SITES


def test_one_coalition_a_task_on_one_slot_else_enough_tasks_for_every_slot():
    assert batch_size(4095, 1) == 1  # in-process: progress per coalition
    assert batch_size(4095, 2) == 4095 // (2 * TASKS_PER_SLOT) == 63
    assert batch_size(7, 2) == 1  # too few to batch
    assert batch_size(2**20 - 1, 64) == MAX_BATCH  # 16,383 without the cap


def test_strided_batches_mix_sizes_and_come_back_in_order():
    items = [(str(i),) for i in range(10)]
    batches = strided(items, 3)
    assert batches == [(("0",), ("3",), ("6",), ("9",)), (("1",), ("4",), ("7",)),
                       (("2",), ("5",), ("8",))]
    assert unstrided(batches) == items
    assert unstrided(strided(items, 10)) == items
    assert unstrided(strided(items, 1)) == items


class CountingExecutor(InProcessExecutor):
    def __init__(self, slots: int) -> None:
        super().__init__()
        self._slots = slots
        self.tasks: list[int] = []
        self.labels: list[str] = []

    @property
    def slots(self) -> int:
        return self._slots

    def map(self, fn, tasks, *, label="tasks"):
        self.tasks.append(len(tasks))
        self.labels.append(label)
        return super().map(fn, tasks, label=label)


@pytest.fixture(scope="module")
def three(tmp_path_factory) -> tuple[ScenarioRef, Valuation]:
    path = tmp_path_factory.mktemp("three") / "three.yaml"
    path.write_text(THREE_SITES)
    loaded = load_scenario(str(path))
    run = build_run(loaded)
    return ScenarioRef.of(loaded), VALUATIONS["plan"](run.setup, run.config)


@pytest.mark.parametrize("batch", [1, 2, 3, 7])
def test_batched_values_are_the_valuations_own_in_order(three, batch):
    ref, valuation = three
    coalitions = all_coalitions(valuation.sites)
    executor = CountingExecutor(slots=2)
    got = ExecutorEvaluate(executor, ref, "plan", batch)(valuation, coalitions)
    assert executor.tasks == [-(-7 // batch)]
    price = f"{valuation.config.carbon_price_usd_per_t:g}"
    assert executor.labels == [f"coalition values at {price} USD/t"
                               + (f", {batch} coalitions a task" if batch > 1 else "")]
    assert [v.sites for v in got] == coalitions
    assert got == [valuation.value(c) for c in coalitions]  # the same floats


def test_the_batch_follows_the_executors_slots(three):
    ref, valuation = three
    coalitions = all_coalitions(valuation.sites) * 40  # 280: batches of 280 // 64 = 4
    executor = CountingExecutor(slots=2)
    got = ExecutorEvaluate(executor, ref, "plan")(valuation, coalitions)
    assert executor.tasks == [70]
    assert [v.sites for v in got] == coalitions

