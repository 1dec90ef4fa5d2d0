"""Issue 25, the live broker's second attack round: each test pins one mechanism.

Authentication before work, validation errors capped, batch checks outside the write lock,
revocation that sticks (a token cache with an epoch), capacity checked against live leases,
honest leases (no completion without a start or too early; a maximum run time), liveness from
heartbeats, fair shares across sites, and the operational items (version, audit, case-blind
site ids, plan retention, private database files).
"""

from __future__ import annotations

import contextlib
import socket
from urllib.parse import urlparse

import pytest

from api.app import create_app
from api.clock import Clock
from tests.api.conftest import bearer, served, site_body
from tests.api.processes import ADMIN as E2E_ADMIN
from tests.api.processes import serving

pytestmark = pytest.mark.anyio
ANSWER_WAIT_S = 20.0  # a deadline for an answer that must come without the body, not a timing


def raw_request(url: str, head: str, partial_body: bytes) -> tuple[int, bytes]:
    """Send a request's head and only part of its declared body; return the status and the
    body of the answer the server sends without waiting for the rest."""
    where = urlparse(url)
    with socket.create_connection((where.hostname, where.port), timeout=ANSWER_WAIT_S) as s:
        s.sendall(head.encode() + partial_body)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        head_part, _, body = answer.partition(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head_part.split(b"\r\n")
                      if line.lower().startswith(b"content-length:"))
        while len(body) < length:
            chunk = s.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(head_part.split()[1]), body


# --- 1. authenticate before work -------------------------------------------------------------

@pytest.mark.anyio(False)
@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/sites"),
                                              ("PUT", "/v1/sites/north/offer"),
                                              ("POST", "/v1/jobs/batch")])
def test_a_request_without_credentials_gets_401_before_its_body_is_read(tmp_path, method,
                                                                         path):
    """A 900 kB body is declared and 2 bytes of it sent: the 401 comes anyway (the server
    never waits for, reads or parses the body)."""
    with serving(tmp_path, {"CARBONFED_ADMIN_TOKEN": E2E_ADMIN}) as url:
        for auth in ("", "Authorization: Bearer cf_not-a-token\r\n"):
            head = (f"{method} {path} HTTP/1.1\r\nHost: broker\r\nContent-Type: "
                    f"application/json\r\n{auth}Content-Length: 900000\r\n\r\n")
            status, body = raw_request(url, head, b'{"')
            assert status == 401, body
            assert len(body) < 300, body
    log = (tmp_path / "broker.log").read_text()
    assert "auth failure 2:" in log and "cf_not-a-token" not in log  # audited, counted


async def test_validation_errors_are_capped(broker):
    body = {**site_body("north"), **{f"unknown{i}": i for i in range(5000)}}
    r = await broker.client.post("/v1/enrolments", json=body, headers=broker.admin())
    assert r.status_code == 422
    answer = r.json()
    assert len(answer["detail"]) == 20 and answer["more_errors"] == 4980
    assert answer["message"].endswith("(and 4980 more errors)")


# --- 3. revocation sticks --------------------------------------------------------------------

async def test_a_lookup_in_flight_during_a_rotation_cannot_cache_the_old_token(broker):
    c = broker.client
    old = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
    services = broker.services
    tokens, db = services.tokens, services.ctx.db
    tokens.forget("north")  # not cached: the next use looks it up
    real_read = db.read
    rotated = []

    @contextlib.contextmanager
    def read_then_rotate():
        # the lookup has read the old token's row; the rotation commits before it caches it
        with real_read() as session:
            yield session
        if not rotated:
            rotated.append(services.sites.rotate_token("north").token)

    db.read = read_then_rotate
    try:
        assert tokens.site_for_token(old) == "north"  # it was valid when read
    finally:
        db.read = real_read
    assert rotated and tokens.site_for_token(old) is None
    r = await c.get("/v1/sites/north", headers=bearer(old))
    assert r.status_code == 401
    assert (await c.get("/v1/sites/north", headers=bearer(rotated[0]))).status_code == 200


async def test_cached_tokens_expire_after_the_ttl(make_settings, wall):
    app = create_app(make_settings(token_cache_ttl_s=5.0), Clock(1.0, wall))
    async with served(app) as c:
        token = (await c.post("/v1/sites", json=site_body("north"))).json()["token"]
        tokens = app.state.services.tokens
        now = [1000.0]
        tokens.monotonic = lambda: now[0]
        tokens.warm()
        db = app.state.services.ctx.db
        # revoke behind the cache's back (as if a forget were missed)
        with db.write() as s:
            from api.models import SiteRow
            s.get(SiteRow, "north").token_sha256 = None
        assert tokens.site_for_token(token) == "north"  # still cached
        now[0] += 5.1
        assert tokens.site_for_token(token) is None
