"""The audit trail: an append-only record of who read or decided what, chained by keyed MACs.

Each entry's MAC is HMAC-SHA256 under the audit key over the MAC before it and the entry's own
fields (its position included), so editing, removing, reordering or inserting entries in the
database breaks the chain, and without the key nobody can compute a chain that verifies. A
one-row head (last position and MAC), written in the same transaction as each append, makes
entries cut off the end show too. No check inside the store can catch the entries and the head
rolled back together to an earlier state, or a trail rebuilt by someone holding the audit key;
that needs the head kept somewhere else as well: a signed checkpoint (`checkpoint.py`).
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

import msgspec

from infrastructure.audit.checkpoint import ChainHead, CheckpointCheck, check_against
from infrastructure.keys.crypto import KEY_BYTES, keyed_hash

GENESIS_MAC = bytes(32)

# A version tag inside every MAC, so a future encoding can never verify as this one.
_ENCODING = "fangxin.audit.v1"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
NO_END = 2**63 - 1
NO_START = -(2**63)


class AuditEntry(msgspec.Struct, frozen=True):
    """One recorded access or decision, at its position in the chain."""

    position: int
    at: datetime
    actor: str
    action: str
    case_id: UUID | None
    subject: str | None
    event_ref: str


class Verification(msgspec.Struct, frozen=True):
    """The chain recomputed: whether it holds, how many entries, and where it first breaks;
    with a checkpoint, whether every entry up to it is still there unchanged."""

    valid: bool
    entries: int
    first_bad_position: int | None
    checkpoint: CheckpointCheck | None = None


class AuditChainError(Exception):
    """The store's head does not match its last entry, so nothing more can be chained on."""


class AuditLog(Protocol):
    """An append-only audit trail whose chain of MACs can be recomputed."""

    def append(
        self,
        at: datetime,
        actor: str,
        action: str,
        case_id: UUID | None,
        subject: str | None,
        event_ref: str,
    ) -> bool:
        """Chain a new entry; False, writing nothing, when event_ref is recorded already."""
        ...

    def has(self, event_ref: str) -> bool:
        """Whether an entry records this event."""
        ...

    def entries(
        self, start: datetime | None = None, end: datetime | None = None, limit: int = 1000
    ) -> list[AuditEntry]:
        """Entries with start <= at < end in chain order (oldest first), at most limit."""
        ...

    def head(self) -> ChainHead:
        """The last position and MAC; AuditChainError when the head and last entry disagree."""
        ...

    def verify(self, checkpoint: ChainHead | None = None) -> Verification:
        """Recompute every MAC and compare the head with the last entry, and the chain with a
        checkpoint taken earlier when one is given."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def check_key(key: bytes) -> None:
    if len(key) != KEY_BYTES:
        raise ValueError(f"the audit key must be {KEY_BYTES} bytes")


def check_limit(limit: int) -> None:
    if limit < 1:
        raise ValueError("limit must be at least 1")


def micros(at: datetime) -> int:
    if at.utcoffset() is None:
        raise ValueError("audit times must be timezone-aware")
    return (at - EPOCH) // MICROSECOND


def utc(at: datetime | None) -> datetime | None:
    return None if at is None else EPOCH + micros(at) * MICROSECOND


def lenient_text(raw: bytes) -> str:
    return raw.decode("utf-8", "surrogateescape")


def stored_fields(row: Sequence[Any]) -> tuple[object, ...]:
    """A PostgreSQL row in the form the MAC covers: time in microseconds, case id as text."""
    position, at, actor, action, case_id, subject, event_ref, prev_mac, mac = row
    at_us = micros(at) if isinstance(at, datetime) else at
    case = str(case_id) if isinstance(case_id, UUID) else case_id
    return (position, at_us, actor, action, case, subject, event_ref, prev_mac, mac)


def chain_mac(key: bytes, prev_mac: bytes, fields: Sequence[object]) -> bytes:
    # A JSON array of ints, strings and nulls is one unambiguous byte string per entry.
    return keyed_hash(key, prev_mac + msgspec.json.encode([_ENCODING, *fields]))


def next_link(head: Sequence[Any] | None, tail: Sequence[Any] | None) -> tuple[int, bytes]:
    """The next position and the MAC to chain from, refusing a head that disagrees with the tail."""
    last = last_link(head, tail)
    return last.entries + 1, last.mac


def last_link(head: Sequence[Any] | None, tail: Sequence[Any] | None) -> ChainHead:
    """The last position and MAC, refusing a head that disagrees with the tail."""
    position, mac = (0, GENESIS_MAC) if tail is None else (tail[0], tail[1])
    if head is None or tuple(head) != (position, mac):
        raise AuditChainError("the audit head does not match the last entry; verify the chain")
    if type(position) is not int or not isinstance(mac, bytes):
        raise AuditChainError("the last audit entry is malformed; verify the chain")
    return ChainHead(entries=position, mac=mac)


def _well_typed(fields: Sequence[object]) -> bool:
    """Whether stored values have their column's type; a blob or number in a text column fails."""
    position, at_us, actor, action, case_id, subject, event_ref, prev_mac, mac = fields
    return (
        type(position) is int
        and type(at_us) is int
        and type(actor) is str
        and type(action) is str
        and (case_id is None or type(case_id) is str)
        and (subject is None or type(subject) is str)
        and type(event_ref) is str
        and type(prev_mac) is bytes
        and type(mac) is bytes
    )


def walk(
    key: bytes,
    rows: Iterable[Sequence[object]],
    head: Sequence[object] | None,
    checkpoint: ChainHead | None = None,
) -> Verification:
    """Recompute the chain over rows in position order, then check the head against its end,
    and the MAC at the checkpoint's position against the checkpoint's."""
    prev = GENESIS_MAC
    expected = 1
    count = 0
    bad: int | None = None
    upto = None if checkpoint is None else checkpoint.entries
    # The MAC the chain recomputes at the checkpoint's position; None unless it gets there.
    mac_at_checkpoint = GENESIS_MAC if upto == 0 else None
    for row in rows:
        count += 1
        if bad is not None:
            continue
        position = row[0]
        if position != expected:
            # A gap points at the first missing position; a too-small one at itself.
            bad = min(position, expected) if isinstance(position, int) else expected
            continue
        if not _well_typed(row):
            bad = expected
            continue
        try:
            mac = chain_mac(key, prev, row[:7])
        except (msgspec.EncodeError, UnicodeEncodeError):
            bad = expected
            continue
        stored_prev, stored_mac = row[7], row[8]
        if (
            stored_prev != prev
            or not isinstance(stored_mac, bytes)
            or not hmac.compare_digest(mac, stored_mac)
        ):
            bad = expected
            continue
        if expected == upto:
            mac_at_checkpoint = mac
        prev = mac
        expected += 1
    if bad is None:
        bad = _head_mismatch(head, expected - 1, prev)
    # The head row says nothing about entries up to the checkpoint: their MACs alone do.
    against = None if checkpoint is None else check_against(checkpoint, count, mac_at_checkpoint)
    return Verification(
        valid=bad is None, entries=count, first_bad_position=bad, checkpoint=against
    )


def _head_mismatch(head: Sequence[object] | None, last: int, last_mac: bytes) -> int | None:
    """Where the chain breaks if the head disagrees with its end; None if it agrees."""
    if head is None or type(head[0]) is not int:
        return last + 1
    head_position = head[0]
    if head_position != last:
        # Entries cut off the end (or a head moved back): the first position that differs.
        return min(head_position, last) + 1
    if not isinstance(head[1], bytes) or not hmac.compare_digest(head[1], last_mac):
        return max(last, 1)
    return None
