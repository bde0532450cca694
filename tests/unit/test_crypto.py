"""Venue codes, tokens, the blind index and the master key."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.venues import CodeKind, InvalidVenueCodeError
from infrastructure.keys.crypto import TokenCredentials, VenueCodeSigner, normalise_phone
from infrastructure.keys.keystore import MasterKeys

SIGNER = VenueCodeSigner(b"c" * 32)


@given(st.uuids(), st.sampled_from(list(CodeKind)), st.integers(1, 65535))
def test_a_code_reads_back_what_it_was_issued_for(
    venue_id: uuid.UUID, kind: CodeKind, version: int
) -> None:
    code = SIGNER.issue(venue_id, kind, version)
    assert len(code) == 36
    assert code.replace("-", "").replace("_", "").isalnum()
    read = SIGNER.read(code)
    assert (read.venue_id, read.kind, read.key_version) == (venue_id, kind, version)


@given(st.uuids(), st.integers(0, 35), st.integers(1, 255))
def test_any_altered_character_makes_a_code_invalid(
    venue_id: uuid.UUID, position: int, delta: int
) -> None:
    code = SIGNER.issue(venue_id, CodeKind.ENTRY, 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    swapped = alphabet[(alphabet.index(code[position]) + delta) % 64]
    altered = code[:position] + swapped + code[position + 1 :]
    if altered == code:
        return
    with pytest.raises(InvalidVenueCodeError):
        SIGNER.read(altered)


def test_a_code_read_before_is_read_alike_and_its_forgeries_are_still_refused() -> None:
    venue_id = uuid.uuid4()
    code = SIGNER.issue(venue_id, CodeKind.CHECKOUT, 3)
    assert SIGNER.read(code) == SIGNER.read(code)
    assert SIGNER.read(code).kind is CodeKind.CHECKOUT
    forged = code[:-1] + ("A" if code[-1] != "A" else "B")
    with pytest.raises(InvalidVenueCodeError):
        SIGNER.read(forged)
    with pytest.raises(InvalidVenueCodeError):
        VenueCodeSigner(b"x" * 32).read(code)  # another deployment's key


def test_a_code_signed_with_another_key_is_refused() -> None:
    code = VenueCodeSigner(b"x" * 32).issue(uuid.uuid4(), CodeKind.ENTRY, 1)
    with pytest.raises(InvalidVenueCodeError):
        SIGNER.read(code)


@pytest.mark.parametrize("code", ["", "short", "é" * 36, "A" * 37, "=" * 36])
def test_malformed_codes_are_refused(code: str) -> None:
    with pytest.raises(InvalidVenueCodeError):
        SIGNER.read(code)


def test_tokens_have_at_least_128_random_bits_and_are_kept_as_hashes() -> None:
    credentials = TokenCredentials(b"i" * 32)
    token, token_hash = credentials.new_token()
    assert len(base64.urlsafe_b64decode(token + "=")) >= 16
    assert token not in token_hash
    assert credentials.token_hash(token) == token_hash
    assert credentials.new_token()[0] != token


@pytest.mark.parametrize(
    "phone", ["+86 139-1234-5678", "13912345678", "008613912345678", "(+86) 139 1234 5678"]
)
def test_one_number_written_many_ways_has_one_blind_index(phone: str) -> None:
    credentials = TokenCredentials(b"i" * 32)
    assert normalise_phone(phone) == "+8613912345678"
    assert credentials.phone_index(phone) == credentials.phone_index("+8613912345678")


def test_the_blind_index_depends_on_its_key() -> None:
    assert TokenCredentials(b"a" * 32).phone_index("+8613912345678") != TokenCredentials(
        b"b" * 32
    ).phone_index("+8613912345678")


def test_the_master_key_is_made_once_and_kept_owner_only(tmp_path: Path) -> None:
    first = MasterKeys.load_or_create("", tmp_path)
    again = MasterKeys.load_or_create("", tmp_path)
    assert first.keys == again.keys
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600


def test_a_configured_master_key_list_names_the_current_version_first() -> None:
    a, b = base64.b64encode(b"a" * 32).decode(), base64.b64encode(b"b" * 32).decode()
    keys = MasterKeys.parse(f"2:{b},1:{a}")
    assert keys.current == 2
    assert MasterKeys.parse(keys.render()).keys == keys.keys
    assert MasterKeys.parse(a).current == 1


@pytest.mark.parametrize("text", ["", "not base64!", base64.b64encode(b"short").decode()])
def test_a_bad_master_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        MasterKeys.parse(text)
