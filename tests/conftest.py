"""The ``slow`` marker, given in one place: ``python -m pytest -m "not slow"`` is the fast inner
loop (the domain tests and the quick API and CLI checks, about a minute); ``python -m pytest``,
what CI runs, is the whole suite.

Slow means seconds of wall time each on a 2-core machine (measured with ``--durations``): real
brokers, agents and worker processes, Dask clusters, headless Chromium, CLI subprocesses that
run a scenario, and a run beside busy-looping processes. Listed by module when every test of it
is, else by test (a parametrised test by its name, every parameter set).
"""

from __future__ import annotations

from pathlib import Path

import pytest

SLOW_MODULES = frozenset({
    "tests/api/test_anytime.py",
    "tests/api/test_end_to_end.py",
    "tests/api/test_end_to_end_leases.py",
    "tests/api/test_pause_end_to_end.py",
    "tests/api/test_planner_process.py",
    "tests/api/test_postgres.py",
    "tests/api/test_schemathesis.py",
    "tests/docs/test_site.py",
    "tests/optimization/test_reproducible_under_load.py",
    "tests/scenarios/test_decomposed.py",
    "tests/scenarios/test_examples.py",
    "tests/scenarios/test_html_report.py",
    "tests/scenarios/test_html_sweep_report.py",
    "tests/scenarios/test_live_commands.py",
    "tests/scenarios/test_scaleout.py",
    "tests/scenarios/test_scaleout_commands.py",
})

SLOW_TESTS = frozenset({
    "tests/api/test_dashboard.py::test_dashboard_in_chromium_follows_a_job_and_keeps_sites_apart",
    "tests/api/test_dashboard.py::test_dashboard_is_static_offline_and_locked_down_by_csp",
    "tests/api/test_live_planner.py::test_live_plan_equals_the_simulators",
    "tests/scenarios/test_bad_input.py::test_a_closed_pipe_ends_quietly",
    "tests/scenarios/test_bad_input.py::test_out_into_an_earlier_results_folder_overwrites_it",
    "tests/scenarios/test_bad_input.py::test_real_process_prints_no_traceback",
    "tests/scenarios/test_cli_market.py::test_json_has_the_documented_shape",
    "tests/scenarios/test_cli_market.py::test_run_ledger_settles_milps_hosted_jobs",
    "tests/scenarios/test_cli_run.py::test_console_script_lists_scenarios",
    "tests/scenarios/test_cli_run.py::test_real_process_run_tiny_progress_on_a_pipe",
    "tests/scenarios/test_cli_run.py::test_real_process_scenarios_command",
    "tests/scenarios/test_cli_run.py::test_run_a_scenario_file_with_a_policy_subset",
    "tests/scenarios/test_cli_run.py::test_run_tiny_exits_0_and_reports_every_policy",
})

_REPO = Path(__file__).resolve().parents[1]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    missing = sorted(m for m in SLOW_MODULES | {t.split("::")[0] for t in SLOW_TESTS}
                     if not (_REPO / m).is_file())
    if missing:  # a renamed module would silently join the fast loop
        raise pytest.UsageError(f"tests/conftest.py lists modules that do not exist: {missing}")
    for item in items:
        module = item.nodeid.split("::")[0]
        if module in SLOW_MODULES or item.nodeid.split("[")[0] in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
