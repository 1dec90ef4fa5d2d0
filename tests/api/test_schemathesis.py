"""Property-based fuzzing of the API from its own OpenAPI spec: no request gets a 5xx.

Bounded: a few examples per operation (a few hundred requests in all). Requests carry the
admin token, or, on a site's own offer and assignment routes, a registered site's token, so the
fuzzer gets past authentication into validation and the service.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from anyio.from_thread import start_blocking_portal
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from api.schemas import JobIn, OfferIn, SiteRegistration
from api.services import Principal
from tests.api.conftest import ADMIN, bearer, job_body, offer_body, site_body

SITE = "fuzz-site"
EXAMPLES_PER_OPERATION = 40


@pytest.fixture
def fuzz_app(make_settings, db_url) -> Iterator[FastAPI]:
    app = create_app(make_settings(db_url=db_url, solver_time_limit_s=2.0))
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(
        app.router.lifespan_context(app)
    ):  # the lifespan runs in the portal's loop; its state stays on app.state
        services = app.state.services
        token = services.sites.register(SiteRegistration(**site_body(SITE)), None).token
        services.offers.put(SITE, OfferIn(**offer_body(1)))
        services.jobs.submit([JobIn(**job_body("fuzz-job", SITE))], Principal(admin=True),
                             ("body",))
        services.planning.plan_round()
        app.state.fuzz_site_token = token
        yield app


def test_no_request_gets_a_server_error(fuzz_app):
    schema = schemathesis.openapi.from_asgi("/openapi.json", fuzz_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 14
    statuses: dict[int, int] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def no_server_error(case: schemathesis.Case) -> None:
            token = ADMIN
            if case.path.startswith("/v1/sites/{site_id}/") and case.path_parameters:
                case.path_parameters["site_id"] = SITE  # a site's own routes, its own token
                token = fuzz_app.state.fuzz_site_token
            response = case.call_and_validate(headers=bearer(token), checks=[not_a_server_error])
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1

        no_server_error()
    # the fuzzer got through to the handlers, not only to validation and authentication
    assert sum(statuses.values()) >= 10 * len(operations)
    assert statuses.get(200, 0) + statuses.get(201, 0) >= len(operations)
    print(statuses)
