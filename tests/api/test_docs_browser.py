"""``/docs`` in headless Chromium against a real ``carbonfed serve``: Swagger UI reads the
broker's OpenAPI 3.1 and shows every operation, and the page asks nothing of any other host.

Swagger UI 4 answered 200 here too, but drew only "The provided definition does not specify a
valid version field": the status and the asset list (test_limits_and_docs.py) cannot tell.
"""

from __future__ import annotations

import os
import time
from urllib.parse import urlsplit

import httpx

from tests.api.processes import ADMIN, HOST, carbonfed, free_port, wait_for

# (method, path) of each operation Swagger UI drew, and the URL of every resource the page
# loaded (Resource Timing lists scripts, styles, images and fetches, failed or not).
OPERATIONS_JS = """
return Array.from(document.querySelectorAll('.opblock')).map(b => [
  (b.querySelector('.opblock-summary-method') || {}).textContent || '',
  (b.querySelector('.opblock-summary-path') || {}).dataset?.path || '']);
"""
RESOURCES_JS = "return performance.getEntriesByType('resource').map(e => e.name);"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


def test_docs_page_shows_every_operation_without_leaving_localhost(tmp_path, processes, browser):
    port = free_port()
    url = f"http://{HOST}:{port}"
    env = {**os.environ, "CARBONFED_ADMIN_TOKEN": ADMIN}
    processes.append(carbonfed("serve", "--db", f"sqlite:///{tmp_path / 'broker.db'}",
                               "--host", HOST, "--port", str(port), env=env,
                               log=tmp_path / "broker.log"))
    wait_for(lambda: httpx.get(f"{url}/v1/health", timeout=5).status_code == 200,
             "the broker", processes)
    spec = httpx.get(f"{url}/openapi.json", timeout=10).json()
    assert spec["openapi"].startswith("3.1")
    expected = {(method.upper(), path) for path, item in spec["paths"].items()
                for method in item if method in METHODS}
    assert ("POST", "/v1/sites") in expected and len(expected) > 10

    browser.get(f"{url}/docs")
    shown: set[tuple[str, str]] = set()
    ends = time.monotonic() + 45.0  # generous: the machine is shared
    while time.monotonic() < ends and shown != expected:
        shown = {(m.strip().upper(), p) for m, p in browser.execute_script(OPERATIONS_JS)}
        time.sleep(0.2)
    browser.save_screenshot(str(tmp_path / "docs.png"))
    text = browser.find_element("tag name", "body").text
    assert shown == expected, f"Swagger UI drew {len(shown)} of {len(expected)} operations; " \
                              f"the page showed:\n{text[:2000]}"
    assert "/v1/sites/{site_id}/heartbeat" in text  # drawn as text, not only in attributes
    assert "valid version field" not in text

    loaded = browser.execute_script(RESOURCES_JS)
    assert any(u.endswith("/openapi.json") for u in loaded)  # the list is the real one
    elsewhere = [u for u in loaded if urlsplit(u).scheme in ("http", "https")
                 and urlsplit(u).netloc != f"{HOST}:{port}"]
    assert elsewhere == []
    # a request that failed (this machine has no route out) shows in the console instead
    console = [e["message"] for e in browser.get_log("browser")]
    assert not [m for m in console if "://" in m and f"{HOST}:{port}" not in m], console
