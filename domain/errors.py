"""The kinds of refusal the domain can give; the interface maps each kind to one HTTP status."""

from __future__ import annotations


class DomainError(Exception):
    """Base of every refusal; `kind` names the problem type, the message is safe to show."""

    kind = "domain-error"


class InvalidInputError(DomainError):
    """The request makes no sense (an unknown dependent, a window too long)."""

    kind = "invalid-input"


class UnknownRegionError(InvalidInputError):
    """A region code that is not on the national list of administrative divisions (GB/T 2260)."""

    kind = "unknown-region"


class NotFoundError(DomainError):
    """Unknown, or not the caller's to see: both look the same from outside."""

    kind = "not-found"


class ConflictError(DomainError):
    """The request is valid but conflicts with the current state."""

    kind = "conflict"


class ConcurrentChangeError(ConflictError):
    """What a command read changed before its commit; the command may look again and retry."""


class ForbiddenError(DomainError):
    """The caller is known but this action is not theirs to take."""

    kind = "forbidden"


class GoneError(DomainError):
    """The data existed and was erased for good."""

    kind = "gone"


class UnavailableError(DomainError):
    """A part of the service is down or behind; the request may be retried."""

    kind = "unavailable"


class AuditUnavailableError(UnavailableError):
    """The audit trail refused an entry, so what it would record is neither shown nor done."""

    kind = "audit-unavailable"
