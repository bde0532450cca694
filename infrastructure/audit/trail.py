"""The domain's audit port over an audit store: durable first, and closed when it refuses."""

from __future__ import annotations

import logging
import sqlite3

import psycopg

from domain.errors import AuditUnavailableError
from domain.ports import AuditRecord
from infrastructure.audit.chain import AuditChainError, AuditLog

log = logging.getLogger("fangxin.audit")


class DurableAuditTrail:
    """Appends each record to the hash-chained store; any refusal becomes a domain error."""

    def __init__(self, store: AuditLog) -> None:
        self._store = store

    def has(self, ref: str) -> bool:
        """Whether an entry of this reference is on record."""
        try:
            return self._store.has(ref)
        except (sqlite3.Error, psycopg.Error) as exc:
            log.error("audit lookup failed", extra={"error": type(exc).__name__})
            raise AuditUnavailableError("the audit trail cannot be read now; retry later") from None

    def record(self, entry: AuditRecord) -> None:
        """Append the entry durably, or raise `AuditUnavailableError`."""
        try:
            self._store.append(
                entry.at, entry.actor, entry.action, entry.case_id, entry.subject, entry.ref
            )
        except (AuditChainError, sqlite3.Error, psycopg.Error) as exc:
            # The error names no personal data: only its type and the action refused.
            log.error(
                "audit append refused; %r is refused too",
                entry.action,
                extra={"error": type(exc).__name__},
            )
            raise AuditUnavailableError(
                "the audit trail cannot record this now, so it is not done; retry later"
            ) from None
