"""The power model and the GPU/site specs it reads."""

from __future__ import annotations

import pytest

from sites import DEFAULT_GPUS, GpuType, SiteSpec, idle_energy_kwh, job_energy_kwh


def test_job_energy_by_hand():
    """2 GPUs x 300 W x PUE 1.1 x 1.5 h = 990 Wh = 0.99 kWh."""
    assert job_energy_kwh(2, GpuType("V100", 300.0), 1.1, 1.5) == pytest.approx(0.99)


def test_job_energy_with_the_catalog_k80():
    """K80 (one die) is 150 W: 4 GPUs x 150 W x PUE 1.4 x 2 h = 1680 Wh = 1.68 kWh."""
    assert DEFAULT_GPUS["K80"].board_power_w == 150.0
    assert job_energy_kwh(4, DEFAULT_GPUS["K80"], 1.4, 2.0) == pytest.approx(1.68)


def test_idle_energy():
    """3 idle GPUs x 50 W x PUE 1.2 x 2 h = 360 Wh = 0.36 kWh; no idle power: 0."""
    assert idle_energy_kwh(3, GpuType("X", 250.0, 50.0), 1.2, 2.0) == pytest.approx(0.36)
    assert idle_energy_kwh(3, GpuType("X", 250.0), 1.2, 2.0) == 0.0


@pytest.mark.parametrize(("board", "idle"), [(0.0, None), (-5.0, None), (100.0, 150.0),
                                             (100.0, -1.0)])
def test_gpu_type_rejects_bad_power(board, idle):
    with pytest.raises(ValueError):
        GpuType("X", board, idle)


def test_site_spec_checks_and_total():
    assert SiteSpec("s", "z", {"V100": 2, "K80": 3}).total_gpus == 5
    with pytest.raises(ValueError, match="GPU counts"):
        SiteSpec("s", "z", {"V100": -1})
    with pytest.raises(ValueError, match="pue"):
        SiteSpec("s", "z", {"V100": 1}, pue=0.9)
    with pytest.raises(ValueError, match="egress"):
        SiteSpec("s", "z", {"V100": 1}, egress_usd_per_gb=-0.1)
