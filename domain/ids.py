"""Ids derived from what a client sent, so that a retried request finds what it made before."""

from __future__ import annotations

import uuid
from uuid import UUID

from domain.errors import ConflictError

# The inputs are pseudonymous ids and client keys, never personal data.
ID_NAMESPACE = UUID("6f1c2a8e-3d0b-5c57-9a51-0e4d2f6b7a10")


class IdempotencyKeyReusedError(ConflictError):
    """The key was used before for something this answer cannot repeat."""

    kind = "idempotency-key-reused"


def derive_id(kind: str, *parts: object) -> UUID:
    """A deterministic id for an idempotent create."""
    return uuid.uuid5(ID_NAMESPACE, "|".join([kind, *map(str, parts)]))
