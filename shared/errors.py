"""One error hierarchy for the domain, mapped to HTTP in one place."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse


class DomainError(Exception):
    """Messages name fields and reasons, never personal data."""

    status_code = 400

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field


class NotFound(DomainError):
    status_code = 404


class Conflict(DomainError):
    status_code = 409


class Invalid(DomainError):
    status_code = 422


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain_error(_: Request, exc: DomainError) -> JSONResponse:
        detail: dict[str, object] = {"reason": exc.reason}
        if exc.field:
            detail["field"] = exc.field
        return JSONResponse({"detail": [detail]}, status_code=exc.status_code)
