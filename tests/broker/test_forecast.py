"""Forecast error: the planner sees it, the meter does not; same seed, same forecasts."""

from __future__ import annotations

import numpy as np

from broker.forecast import ForecastNoise


def test_error_grows_with_lead_time_and_now_is_exact():
    """sd x sqrt(lead x slot_h / 24): 0.1 at 24 h, 0 now, 0.05 at 6 h."""
    model = ForecastNoise(0.1, 0.1, seed=1)
    np.testing.assert_allclose(model.lead_sd(0.1, 25, 1.0)[[0, 6, 24]], [0.0, 0.05, 0.1])
    carbon = np.full((3, 25), 300.0)
    price = np.full((3, 25), 50.0)
    fc_carbon, _ = model.apply(4, 1.0, carbon, price)
    np.testing.assert_array_equal(fc_carbon[:, 0], 300.0)
    assert not np.allclose(fc_carbon[:, 1:], 300.0)
    # the same round gives the same forecast (every policy plans on the same numbers)
    again, _ = model.apply(4, 1.0, carbon, price)
    np.testing.assert_array_equal(fc_carbon, again)
    other, _ = model.apply(5, 1.0, carbon, price)
    assert not np.array_equal(fc_carbon, other)


def test_no_error_returns_the_actual_arrays():
    carbon, price = np.ones((1, 3)), np.ones((1, 3))
    out = ForecastNoise().apply(0, 1.0, carbon, price)
    assert out[0] is carbon and out[1] is price


def test_relative_error_sd_is_what_it_says():
    """At 24 h lead, 20,000 draws of 100 x (1 + 0.2 z) have sd 20 (within 3%)."""
    model = ForecastNoise(0.2, 0.0, seed=3)
    carbon = np.full((20_000, 25), 100.0)
    fc, _ = model.apply(0, 1.0, carbon, carbon.copy())
    assert abs(fc[:, 24].std() - 20.0) < 0.6


def test_every_class_named_error_is_an_exception():
    """``ForecastError`` was a forecast's error model, not an exception, yet read like one:
    ``except ForecastError`` would have been a TypeError at the worst moment. Every class the
    project names ``...Error`` is one now (the model is ``ForecastNoise``)."""
    import importlib
    import inspect
    import pkgutil

    named_error = {}
    for package in ("sites", "optimization", "broker", "market", "api", "scenarios"):
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            if info.name.startswith("api.migrations"):
                continue  # Alembic's scripts run only under Alembic
            module = importlib.import_module(info.name)
            for name, cls in inspect.getmembers(module, inspect.isclass):
                if cls.__module__ == info.name and name.endswith("Error"):
                    named_error[f"{info.name}.{name}"] = cls
    assert "broker.forecast.ForecastError" not in named_error
    assert len(named_error) >= 10  # the scan did find the project's exceptions
    assert [n for n, cls in named_error.items() if not issubclass(cls, Exception)] == []


def test_a_negative_error_sd_names_its_field():
    import pytest

    from sites import InputError

    with pytest.raises(InputError, match=r"forecast: price_error_sd: must be >= 0 \(got -0.1\)"):
        ForecastNoise(0.1, -0.1)
