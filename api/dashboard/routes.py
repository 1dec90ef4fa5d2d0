"""``GET /dashboard``: the live broker's dashboard, one static page with inline CSS and JS.

The page holds no data when served: its script asks for a token in a login form, keeps it in
a JS variable only (never a cookie, storage or the URL, so no other origin and no later
visitor can use it) and polls the JSON routes with ``Authorization: Bearer``. Nothing comes
from a CDN, so it works offline like ``/docs``. The Content-Security-Policy allows only the
page's own inline script and style (by their sha256) and requests to this origin.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter(include_in_schema=False)

PAGE = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")


def _hashes(tag: str) -> str:
    """CSP sources for every inline ``<tag>`` block of the page: hashes, not 'unsafe-inline',
    so an injected script or style would not run even if some value escaped escaping."""
    blocks = re.findall(rf"<{tag}>(.*?)</{tag}>", PAGE, flags=re.DOTALL)
    return " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(b.encode()).digest()).decode() + "'"
        for b in blocks
    )


CSP = (
    "default-src 'none'; "
    f"script-src {_hashes('script')}; "
    f"style-src {_hashes('style')}; "
    "connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@router.get("/dashboard")
async def dashboard() -> HTMLResponse:
    return HTMLResponse(PAGE, headers=HEADERS)
