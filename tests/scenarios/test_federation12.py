"""The built-in ``federation-12`` scenario: listed, says what it needs, runs on the real data."""

from __future__ import annotations

import contextlib
import io

import pytest

from scenarios.build import build_run
from scenarios.cli import main
from scenarios.loader import builtin_scenarios, load_scenario
from scenarios.runner import run_scenario
from sites.errors import InputError
from tests.realdata import DATA_DIR, needs_data


def test_listed_and_its_description_says_it_needs_the_data_folder():
    assert "needs the data folder" in builtin_scenarios()["federation-12"]


def test_without_the_data_folder_it_says_what_is_missing(monkeypatch):
    monkeypatch.delenv("CARBONFED_DATA", raising=False)
    with pytest.raises(InputError, match=r"built-in:federation-12: .*needs the data folder"):
        load_scenario("federation-12", None)
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = main(["run", "federation-12"])
    assert code == 2
    assert err.getvalue().count("\n") == 1 and "--data DIR or set CARBONFED_DATA" in err.getvalue()


@pytest.mark.realdata
@needs_data
def test_twelve_zones_real_fleets_and_a_shortened_run():
    """12 sites, one per zone; every job runs somewhere; 12 hours of arrivals, two policies."""
    loaded = load_scenario("federation-12", DATA_DIR)
    assert len(loaded.scenario.zones) == 12
    assert len({s.zone for s in loaded.scenario.sites}) == 12
    short = loaded.scenario.model_copy(update={"period_h": 12.0, "drain_h": 12.0,
                                               "policies": ["milp", "isolated"]})
    run = build_run(type(loaded)(short, loaded.source, loaded.base_dir, loaded.data_dir))
    assert all(s.total_gpus > 0 for s in run.setup.federation.sites)
    assert 0 < len(run.setup.jobs) < 100
    result = run_scenario(run)
    assert result.summaries["milp"].jobs_finished > 0
    # at 100 USD/t the MILP moves work to cleaner grids: fewer kg than isolated on this data
    assert result.summaries["milp"].carbon_kg <= result.summaries["isolated"].carbon_kg
