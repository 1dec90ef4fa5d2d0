"""The affinity matrix: throughput of each job type on each GPU type."""

from __future__ import annotations

import numpy as np
import pytest

from sites import AffinityMatrix, default_affinity
from sites.affinity import NEWER_GPU_SPEEDUP_OVER_V100


def test_from_nested_orders_gpus_by_first_appearance_and_fills_missing_with_zero():
    table = AffinityMatrix.from_nested({
        "a": {"K80": 1.0, "V100": 3.0},
        "b": {"V100": 2.0, "T4": 0.5},
    })
    assert table.job_types == ("a", "b")
    assert table.gpu_types == ("K80", "V100", "T4")
    np.testing.assert_array_equal(table.throughput, [[1.0, 3.0, 0.0], [0.0, 2.0, 0.5]])
    assert table.steps_per_s("b", "T4") == 0.5
    assert table.steps_per_s("a", "T4") == 0.0  # missing entry: does not run there
    assert table.steps_per_s("a", "H100") == 0.0  # GPU type not in the table at all
    assert table.job_index("b") == 1
    assert table.gpu_index("T4") == 2


def test_throughput_is_read_only():
    table = AffinityMatrix.from_nested({"a": {"V100": 1.0}})
    with pytest.raises(ValueError):
        table.throughput[0, 0] = 5.0


@pytest.mark.parametrize("bad", [[[-1.0]], [[np.inf]], [[np.nan]]])
def test_rejects_negative_or_non_finite_throughput(bad):
    with pytest.raises(ValueError, match="finite and >= 0"):
        AffinityMatrix(("a",), ("V100",), np.array(bad))


def test_rejects_wrong_shape():
    with pytest.raises(ValueError, match="shape"):
        AffinityMatrix(("a", "b"), ("V100",), np.array([[1.0, 2.0]]))


def test_unknown_job_type_is_an_error():
    with pytest.raises(ValueError):
        AffinityMatrix.from_nested({"a": {"V100": 1.0}}).steps_per_s("zzz", "V100")


def test_default_affinity_scales_newer_gpus_from_v100_by_the_documented_factors():
    """Newer GPU throughput = V100 throughput x factor (T4 0.25, A100 2, H100 4.4)."""
    table = default_affinity()
    assert {"K80", "P100", "V100", "T4", "A100", "H100"} <= set(table.gpu_types)
    assert NEWER_GPU_SPEEDUP_OVER_V100 == {"T4": 0.25, "A100": 2.0, "H100": 4.4}
    for job in table.job_types:
        v100 = table.steps_per_s(job, "V100")
        assert v100 > 0
        assert table.steps_per_s(job, "T4") == pytest.approx(0.25 * v100)
        assert table.steps_per_s(job, "A100") == pytest.approx(2.0 * v100)
        assert table.steps_per_s(job, "H100") == pytest.approx(4.4 * v100)
    assert (table.throughput > 0).all()  # every Gavel job type runs on every catalog GPU
