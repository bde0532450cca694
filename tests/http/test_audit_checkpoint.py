"""Audit checkpoints over HTTP: signed, kept by the auditor, and held against the trail later."""

from __future__ import annotations

import base64
import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from infrastructure.audit.chain import GENESIS_MAC, AuditEntry
from infrastructure.services import Services
from infrastructure.settings import Settings
from tests.conftest import ADMIN_TOKEN, World, bearer, tamper_audit

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def auditor(world: World) -> dict[str, str]:
    return bearer(world.auditor()["token"])


def record(services: Services, count: int) -> None:
    """Entries appended as a read of case data would append them."""
    case_id = uuid.uuid4()
    for i in range(count):
        services.audit.append(
            T0 + timedelta(minutes=i),
            f"tracer-{i}",
            "read trajectory",
            case_id,
            None,
            f"{case_id}:{i}",
        )


def rebuild(services: Services, settings: Settings, data_dir: Path, kept: list[AuditEntry]) -> None:
    """The trail emptied and chained again under the audit key (which the master key unwraps)."""
    tamper_audit(settings, data_dir, "DELETE FROM fangxin_audit")
    tamper_audit(
        settings, data_dir, "UPDATE fangxin_audit_head SET position = 0, mac = ?", GENESIS_MAC
    )
    for e in kept:
        services.audit.append(e.at, e.actor, e.action, e.case_id, e.subject, e.event_ref)


def verification(world: World, auditor: dict[str, str], checkpoint: str) -> Any:
    response = world.client.get(
        "/v1/audit/verification", params={"checkpoint": checkpoint}, headers=auditor
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_a_checkpoint_is_signed_so_the_auditor_can_check_it_offline(
    world: World, services: Services, auditor: dict[str, str]
) -> None:
    record(services, 3)

    answer = world.client.get("/v1/audit/checkpoint", headers=auditor).json()

    entries = services.audit.verify().entries
    assert answer["entries"] == entries
    assert answer["algorithm"] == "Ed25519"
    issued_at = datetime.fromisoformat(answer["issued_at"])
    micros = (issued_at - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)
    message = (
        b"fangxin.audit.checkpoint.v1"
        + struct.pack(">Q", answer["entries"])
        + bytes.fromhex(answer["head"])
        + struct.pack(">q", micros)
    )
    public_key = Ed25519PublicKey.from_public_bytes(bytes.fromhex(answer["public_key"]))
    public_key.verify(bytes.fromhex(answer["signature"]), message)  # raises if not
    later = world.client.get("/v1/audit/verification", headers=auditor).json()
    assert later["public_key"] == answer["public_key"]


def test_a_checkpoint_holds_while_the_trail_only_grows(
    world: World, services: Services, auditor: dict[str, str]
) -> None:
    record(services, 3)
    taken = world.client.get("/v1/audit/checkpoint", headers=auditor).json()

    record(services, 2)
    answer = verification(world, auditor, taken["checkpoint"])

    assert answer["valid"] is True
    assert answer["entries"] == taken["entries"] + 2
    assert answer["checkpoint"] == {
        "valid": True,
        "entries": taken["entries"],
        "head": taken["head"],
        "issued_at": taken["issued_at"],
    }


def test_a_trail_cut_short_with_its_head_moved_back_verifies_but_breaks_the_checkpoint(
    world: World,
    services: Services,
    settings: Settings,
    data_dir: Path,
    auditor: dict[str, str],
) -> None:
    record(services, 4)
    taken = world.client.get("/v1/audit/checkpoint", headers=auditor).json()
    last = taken["entries"] - 2

    tamper_audit(settings, data_dir, f"DELETE FROM fangxin_audit WHERE position > {last}")
    tamper_audit(
        settings,
        data_dir,
        f"UPDATE fangxin_audit_head SET position = {last},"
        f" mac = (SELECT mac FROM fangxin_audit WHERE position = {last})",
    )
    answer = verification(world, auditor, taken["checkpoint"])

    assert answer["valid"] is True
    assert answer["entries"] == last
    assert answer["checkpoint"]["valid"] is False
    assert answer["checkpoint"]["reason"] == "entries-missing"


def test_a_trail_rebuilt_under_the_audit_key_without_one_read_breaks_the_checkpoint(
    world: World,
    services: Services,
    settings: Settings,
    data_dir: Path,
    auditor: dict[str, str],
) -> None:
    record(services, 4)
    taken = world.client.get("/v1/audit/checkpoint", headers=auditor).json()
    kept = [e for e in services.audit.entries() if e.actor != "tracer-1"]

    rebuild(services, settings, data_dir, kept)
    answer = verification(world, auditor, taken["checkpoint"])

    assert answer["valid"] is True
    assert answer["checkpoint"]["valid"] is False
    assert answer["checkpoint"]["reason"] == "entries-missing"


def test_an_entry_altered_before_the_checkpoint_breaks_it(
    world: World,
    services: Services,
    settings: Settings,
    data_dir: Path,
    auditor: dict[str, str],
) -> None:
    record(services, 3)
    taken = world.client.get("/v1/audit/checkpoint", headers=auditor).json()

    tamper_audit(settings, data_dir, "UPDATE fangxin_audit SET actor = 'nobody' WHERE position = 1")
    answer = verification(world, auditor, taken["checkpoint"])

    assert answer["valid"] is False
    assert answer["first_bad_position"] == 1
    assert answer["checkpoint"]["valid"] is False
    assert answer["checkpoint"]["reason"] == "chain-broken"


def test_a_checkpoint_with_a_tampered_signature_is_refused(
    world: World, services: Services, auditor: dict[str, str]
) -> None:
    record(services, 2)
    compact = world.client.get("/v1/audit/checkpoint", headers=auditor).json()["checkpoint"]
    raw = bytearray(base64.urlsafe_b64decode(compact + "=="))
    raw[-1] ^= 0x01
    forged = base64.urlsafe_b64encode(bytes(raw)).decode().rstrip("=")

    response = world.client.get(
        "/v1/audit/verification", params={"checkpoint": forged}, headers=auditor
    )

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["type"] == "/problems/invalid-checkpoint"


@pytest.mark.parametrize("checkpoint", ["", "x", "A" * 151, "A" * 5000])
def test_a_malformed_checkpoint_is_refused(
    world: World, auditor: dict[str, str], checkpoint: str
) -> None:
    response = world.client.get(
        "/v1/audit/verification", params={"checkpoint": checkpoint}, headers=auditor
    )

    assert response.status_code == 400
    assert response.json()["type"] == "/problems/invalid-checkpoint"


def test_no_checkpoint_is_signed_while_the_head_disagrees_with_the_last_entry(
    world: World,
    services: Services,
    settings: Settings,
    data_dir: Path,
    auditor: dict[str, str],
) -> None:
    record(services, 3)
    last = services.audit.head().entries

    tamper_audit(settings, data_dir, f"DELETE FROM fangxin_audit WHERE position = {last}")
    response = world.client.get("/v1/audit/checkpoint", headers=auditor)

    assert response.status_code == 409
    assert response.json()["type"] == "/problems/audit-chain-broken"


@pytest.mark.parametrize(
    ("token", "status"), [(None, 401), (ADMIN_TOKEN, 403), ("not-a-token", 401)]
)
def test_only_an_auditor_takes_a_checkpoint(world: World, token: str | None, status: int) -> None:
    headers = bearer(token) if token else {}

    assert world.client.get("/v1/audit/checkpoint", headers=headers).status_code == status
