"""Signed audit checkpoints: what an auditor keeps outside the system, and checks offline."""

from __future__ import annotations

import base64
import secrets
import struct
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infrastructure.audit.checkpoint import (
    SIGNATURE_TAG,
    ChainHead,
    CheckpointSigner,
    InvalidCheckpointError,
    checkpoint_signer,
)
from infrastructure.keys.keystore import KeyStore, MasterKeys, SQLiteKeyBackend

AT = datetime(2026, 3, 4, 9, 30, 0, 123456, tzinfo=UTC)
HEAD = ChainHead(entries=42, mac=bytes(range(32)))


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner(secrets.token_bytes(32))


def flipped(compact: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(compact + "=="))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")


def test_a_checkpoint_reads_back_as_issued(signer: CheckpointSigner) -> None:
    issued = signer.issue(HEAD, AT.astimezone(timezone(timedelta(hours=8))))

    read = signer.read(issued.compact())

    assert read == issued
    assert read.head == HEAD
    assert read.issued_at == AT
    assert read.issued_at.utcoffset() == timedelta(0)


def test_an_auditor_can_check_a_checkpoint_offline_with_the_public_key(
    signer: CheckpointSigner,
) -> None:
    issued = signer.issue(HEAD, AT)
    micros = (AT - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    message = SIGNATURE_TAG + struct.pack(">Q", 42) + HEAD.mac + struct.pack(">q", micros)

    Ed25519PublicKey.from_public_bytes(signer.public_key).verify(issued.signature, message)

    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(signer.public_key).verify(
            issued.signature, message.replace(struct.pack(">Q", 42), struct.pack(">Q", 41))
        )


@pytest.mark.parametrize(
    "index",
    [
        1,  # the entry count
        20,  # the head
        45,  # the issue time
        100,  # the signature
    ],
)
def test_a_checkpoint_altered_anywhere_is_refused(signer: CheckpointSigner, index: int) -> None:
    compact = signer.issue(HEAD, AT).compact()

    with pytest.raises(InvalidCheckpointError, match="signature"):
        signer.read(flipped(compact, index))


def test_a_checkpoint_of_another_deployment_is_refused(signer: CheckpointSigner) -> None:
    other = CheckpointSigner(secrets.token_bytes(32)).issue(HEAD, AT).compact()

    with pytest.raises(InvalidCheckpointError, match="signature"):
        signer.read(other)


@pytest.mark.parametrize(
    "text",
    ["", "not a checkpoint", "A" * 151, "A" * 150 + "=", "A" * 152, "é" * 151],
)
def test_a_malformed_checkpoint_is_refused(signer: CheckpointSigner, text: str) -> None:
    with pytest.raises(InvalidCheckpointError):
        signer.read(text)


def test_a_checkpoint_of_an_unknown_version_is_refused(signer: CheckpointSigner) -> None:
    compact = signer.issue(HEAD, AT).compact()

    with pytest.raises(InvalidCheckpointError, match="not a Fangxin"):
        signer.read(flipped(compact, 0))


def test_every_worker_over_one_key_store_signs_with_the_same_key(tmp_path: Path) -> None:
    master = MasterKeys({1: secrets.token_bytes(32)}, 1)
    first = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), master)
    second = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), master)
    try:
        issued = checkpoint_signer(first).issue(HEAD, AT)

        assert checkpoint_signer(second).read(issued.compact()) == issued
        assert checkpoint_signer(second).public_key == checkpoint_signer(first).public_key
    finally:
        first.close()
        second.close()
