"""The broker service's errors and how the app turns them (and every other mishap) into 4xx.

Bodies keep FastAPI's validation shape, ``{"detail": [{"loc", "msg", "type"}], ...}``, plus a
one-line ``message`` naming the field and the problem (``body.gpus.X100: unknown GPU type``).
"""

from __future__ import annotations

from collections.abc import Sequence

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DBAPIError, IntegrityError

# A body with 60,000 wrong fields answered 60,000 errors (5.4 MB): the first ones name the
# problem, a count tells the rest.
MAX_ERRORS_SHOWN = 20


class ServiceError(Exception):
    status_code = 400

    def __init__(self, message: str, **extra: object) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra


class NotFoundError(ServiceError):
    status_code = 404


class ConflictError(ServiceError):
    status_code = 409


class ForbiddenError(ServiceError):
    status_code = 403


class UnauthorizedError(ServiceError):
    status_code = 401


class FieldError(ServiceError):
    """Input that passed the schema but not the broker's checks (unknown GPU type, ...)."""

    status_code = 422

    def __init__(self, loc: Sequence[str | int], message: str) -> None:
        super().__init__(message)
        self.loc = tuple(loc)


def dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


async def _service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    headers = {"WWW-Authenticate": "Bearer"} if error.status_code == 401 else None
    body: dict[str, object]
    if isinstance(error, FieldError):
        body = {
            "detail": [{"loc": list(error.loc), "msg": error.message, "type": "value_error"}],
            "message": f"{dotted(error.loc)}: {error.message}",
        }
    else:
        body = {"detail": error.message, "message": error.message, **error.extra}
    return JSONResponse(body, status_code=error.status_code, headers=headers)


async def _validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    details = [
        {k: v for k, v in e.items() if k in ("loc", "msg", "type")}
        for e in errors[:MAX_ERRORS_SHOWN]
    ]
    first = details[0] if details else {"loc": [], "msg": "invalid request"}
    message = f"{dotted(first['loc'])}: {first['msg']}"
    body: dict[str, object] = {"detail": details, "message": message}
    if len(errors) > MAX_ERRORS_SHOWN:
        body["more_errors"] = len(errors) - MAX_ERRORS_SHOWN
        body["message"] = f"{message} (and {body['more_errors']} more errors)"
    return JSONResponse(body, status_code=422)


async def _integrity_error(request: Request, error: Exception) -> JSONResponse:
    message = "conflicts with the broker's state (duplicate id or unknown reference)"
    return JSONResponse({"detail": message, "message": message}, status_code=409)


async def _connection_lost(request: Request, error: Exception) -> JSONResponse:
    """A database connection found dead (the server restarted): 503, try again. The pool
    renews every connection older than the failure, so the retry gets a fresh one (the
    broker does not ping a connection before each use: that round trip cost PostgreSQL
    offers a third of their CPU)."""
    if not (isinstance(error, DBAPIError) and error.connection_invalidated):
        raise error
    message = "the database connection was lost; retry"
    return JSONResponse({"detail": message, "message": message}, status_code=503,
                        headers={"Retry-After": "1"})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _service_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DBAPIError, _connection_lost)
