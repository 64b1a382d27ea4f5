"""Domain errors. Each knows the HTTP status it maps to; the API turns them into RFC 9457 problems,
the CLI and the worker catch the same classes."""

from __future__ import annotations

from typing import Any


class SluiceError(Exception):
    """Base of every error a person can act on."""

    status: int = 400
    title: str = "Bad request"
    slug: str = "bad-request"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(SluiceError):
    status = 422
    title = "Invalid input"
    slug = "invalid-input"


class NotAuthenticated(SluiceError):
    status = 401
    title = "Not authenticated"
    slug = "not-authenticated"


class NotAllowed(SluiceError):
    status = 403
    title = "Not allowed"
    slug = "not-allowed"


class NotFound(SluiceError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(SluiceError):
    """A stale action: the object moved on since the caller looked at it."""

    status = 409
    title = "Conflict"
    slug = "conflict"


class TargetError(SluiceError):
    """A target system refused or could not be reached. `retryable` says whether trying again may help."""

    status = 502
    title = "Target error"
    slug = "target-error"

    def __init__(self, detail: str, *, retryable: bool = True, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.retryable = retryable
