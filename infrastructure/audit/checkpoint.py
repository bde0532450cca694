"""Signed checkpoints of the audit chain, for an auditor to keep outside the system.

A checkpoint is a chain head: how many entries the chain had and the MAC of the last one. Each
MAC covers every entry before it, so as long as the chain still holds that MAC at that position,
no entry up to it was removed, altered or reordered; not even by someone holding the audit key,
who can recompute a whole chain, shorter or edited, but cannot make it end in the same MAC.
What the store alone cannot show (entries and head rolled back together, or the whole trail
rebuilt) shows against a checkpoint kept elsewhere.

Checkpoints are signed with Ed25519 under a service key of the key store, so every worker signs
alike and an auditor can check offline, with the public key, that one came from this
deployment. The signature covers `fangxin.audit.checkpoint.v1`, then the entry count (8 bytes,
big-endian), the head MAC (32 bytes) and the issue time (microseconds since 1970-01-01 UTC,
8 bytes, big-endian, signed). The compact form handed back for verification is the version
byte 1, the same three fields and the 64-byte signature, in unpadded base64url.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
import struct
from datetime import UTC, datetime, timedelta

import msgspec
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from domain.errors import InvalidInputError
from infrastructure.keys.keystore import KeyStore

SIGNING_KEY_NAME = "audit-checkpoint"
SIGNATURE_TAG = b"fangxin.audit.checkpoint.v1"
_VERSION = 1
_FIELDS = struct.Struct(">Q32sq")
_SIGNATURE_BYTES = 64
_COMPACT_BYTES = 1 + _FIELDS.size + _SIGNATURE_BYTES
_COMPACT_CHARS = -(-_COMPACT_BYTES * 4 // 3)
_BASE64URL = re.compile(r"[A-Za-z0-9_-]+")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

ENTRIES_MISSING = "entries-missing"
CHAIN_BROKEN = "chain-broken"
REWRITTEN = "rewritten"


class ChainHead(msgspec.Struct, frozen=True):
    """The end of the chain: the position of its last entry (0 when empty) and that entry's MAC."""

    entries: int
    mac: bytes


class CheckpointCheck(msgspec.Struct, frozen=True):
    """Whether every entry up to a checkpoint is still there unchanged; if not, why not.

    `entries-missing`: the chain is shorter than the checkpoint. `chain-broken`: an entry at or
    before the checkpoint fails verification. `rewritten`: the chain verifies, but its entry at
    the checkpoint's position is not the one checkpointed, so entries up to it were replaced
    and their MACs recomputed (with the audit key).
    """

    valid: bool
    reason: str | None = None


class Checkpoint(msgspec.Struct, frozen=True):
    """A chain head with the time it was issued and the deployment's signature over both."""

    head: ChainHead
    issued_at: datetime
    signature: bytes

    def compact(self) -> str:
        """The form an auditor hands back to `GET /v1/audit/verification?checkpoint=`."""
        raw = bytes([_VERSION]) + _fields(self.head, self.issued_at) + self.signature
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")


class InvalidCheckpointError(InvalidInputError):
    """A checkpoint that is malformed or not signed by this deployment."""

    kind = "invalid-checkpoint"


class CheckpointSigner:
    """Signs chain heads and reads back checkpoints, refusing any not signed with its key."""

    def __init__(self, seed: bytes) -> None:
        self._private = Ed25519PrivateKey.from_private_bytes(seed)
        self._public = self._private.public_key()
        self.public_key = self._public.public_bytes(Encoding.Raw, PublicFormat.Raw)

    def issue(self, head: ChainHead, at: datetime) -> Checkpoint:
        """A checkpoint of `head`, issued at `at` (kept to the microsecond, in UTC)."""
        issued_at = _EPOCH + _micros(at) * _MICROSECOND
        signature = self._private.sign(SIGNATURE_TAG + _fields(head, issued_at))
        return Checkpoint(head=head, issued_at=issued_at, signature=signature)

    def read(self, compact: str) -> Checkpoint:
        """The checkpoint of a compact form, once its signature is found to be this deployment's."""
        raw = _decode(compact)
        if raw is None or len(raw) != _COMPACT_BYTES or raw[0] != _VERSION:
            raise InvalidCheckpointError("this is not a Fangxin audit checkpoint")
        fields, signature = raw[1 : 1 + _FIELDS.size], raw[1 + _FIELDS.size :]
        try:
            self._public.verify(signature, SIGNATURE_TAG + fields)
        except InvalidSignature:
            raise InvalidCheckpointError(
                "this checkpoint's signature is not this deployment's"
            ) from None
        entries, mac, issued_us = _FIELDS.unpack(fields)
        try:
            issued_at = _EPOCH + issued_us * _MICROSECOND
        except OverflowError:
            raise InvalidCheckpointError("this checkpoint's issue time is out of range") from None
        return Checkpoint(ChainHead(entries, mac), issued_at, signature)


def checkpoint_signer(keys: KeyStore) -> CheckpointSigner:
    """The deployment's signer, from a service key every worker reads alike."""
    return CheckpointSigner(keys.service_key(SIGNING_KEY_NAME))


def check_against(
    checkpoint: ChainHead, entries: int, mac_at_checkpoint: bytes | None
) -> CheckpointCheck:
    """Compare a walked chain with a checkpoint: `entries` it holds, and the MAC it recomputed
    at the checkpoint's position (None when it broke at or before that position)."""
    if entries < checkpoint.entries:
        return CheckpointCheck(valid=False, reason=ENTRIES_MISSING)
    if mac_at_checkpoint is None:
        return CheckpointCheck(valid=False, reason=CHAIN_BROKEN)
    if not hmac.compare_digest(mac_at_checkpoint, checkpoint.mac):
        return CheckpointCheck(valid=False, reason=REWRITTEN)
    return CheckpointCheck(valid=True)


def _fields(head: ChainHead, issued_at: datetime) -> bytes:
    return _FIELDS.pack(head.entries, head.mac, _micros(issued_at))


def _micros(at: datetime) -> int:
    if at.utcoffset() is None:
        raise ValueError("checkpoint times must be timezone-aware")
    return (at - _EPOCH) // _MICROSECOND


def _decode(compact: str) -> bytes | None:
    if len(compact) != _COMPACT_CHARS or not _BASE64URL.fullmatch(compact):
        return None
    try:
        return base64.urlsafe_b64decode(compact + "=" * (-len(compact) % 4))
    except (binascii.Error, ValueError):
        return None
