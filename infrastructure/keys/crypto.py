"""Cryptographic primitives: AES-GCM sealing, key derivation, tokens, blind index, venue codes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import struct
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from domain.venues import CodeKind, InvalidVenueCodeError, VenueCode

NONCE_BYTES = 12
KEY_BYTES = 32


class DecryptionError(Exception):
    """Ciphertext, key or associated data do not match: tampering or a wrong key."""


def seal(key: bytes | AESGCM, plaintext: bytes, associated_data: bytes) -> bytes:
    """AES-256-GCM with a random 96-bit nonce; returns nonce || ciphertext || tag."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    nonce = secrets.token_bytes(NONCE_BYTES)
    return nonce + aead.encrypt(nonce, plaintext, associated_data)


def unseal(key: bytes | AESGCM, sealed: bytes, associated_data: bytes) -> bytes:
    """Reverse `seal`; raises DecryptionError when anything was altered."""
    aead = key if isinstance(key, AESGCM) else AESGCM(key)
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated_data)
    except (InvalidTag, ValueError):
        raise DecryptionError("authentication failed") from None


def combine_keys(keys: list[bytes], info: bytes) -> bytes:
    """One key that needs every input key: destroying any of them destroys it (HKDF)."""
    if len(keys) == 1:
        return keys[0]
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(
        b"".join(keys)
    )


def derive_key(key: bytes, info: bytes) -> bytes:
    """A key of its own for one purpose (`info`), from another key (HKDF)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(key)


def keyed_hash(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256."""
    return hmac.new(key, message, hashlib.sha256).digest()


_PHONE_NOISE = re.compile(r"[\s\-().]")


def normalise_phone(phone: str) -> str:
    """E.164-like form: `+` and digits; numbers without a country code are taken as Chinese."""
    digits = _PHONE_NOISE.sub("", phone)
    if digits.startswith("00"):
        digits = "+" + digits[2:]
    if not digits.startswith("+"):
        digits = "+86" + digits.lstrip("0")
    return digits


class TokenCredentials:
    """Bearer tokens (256 random bits, stored as SHA-256) and the phone blind index."""

    def __init__(self, index_key: bytes) -> None:
        self._index_key = index_key

    def new_token(self) -> tuple[str, str]:
        """A fresh token and its hash."""
        token = secrets.token_urlsafe(32)
        return token, self.token_hash(token)

    def token_hash(self, token: str) -> str:
        """SHA-256 of the token: the only form in which tokens are kept."""
        return hashlib.sha256(token.encode()).hexdigest()

    def phone_index(self, phone: str) -> str:
        """HMAC-SHA256 of the normalised number, under a key of its own."""
        return keyed_hash(self._index_key, normalise_phone(phone).encode()).hex()


# A venue code: one format byte (high nibble: format version; low nibble: kind), the venue id,
# the key version, then a truncated HMAC. 27 bytes, 36 URL-safe characters.
_CODE_FORMAT = 1
_CODE_LAYOUT = struct.Struct(">B16sH")
_TAG_BYTES = 8
_KINDS = {CodeKind.ENTRY: 1, CodeKind.CHECKOUT: 2}
_KIND_OF = {number: kind for kind, number in _KINDS.items()}


AUTHENTIC_CODES_KEPT = 100_000


class VenueCodeSigner:
    """Issues venue codes and refuses forged, truncated or malformed ones."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        # Codes already found authentic (every check-in scans one of a few thousand posters).
        # Only authentic codes get in, so forged ones cannot crowd it; rotation is decided by
        # the venue's current code version, not here.
        self._authentic: dict[str, VenueCode] = {}

    def issue(self, venue_id: UUID, kind: CodeKind, key_version: int) -> str:
        """The code printed on one poster."""
        body = _CODE_LAYOUT.pack((_CODE_FORMAT << 4) | _KINDS[kind], venue_id.bytes, key_version)
        tag = keyed_hash(self._key, body)[:_TAG_BYTES]
        return base64.urlsafe_b64encode(body + tag).decode().rstrip("=")

    def read(self, code: str) -> VenueCode:
        """Authenticate a scanned code."""
        known = self._authentic.get(code)
        if known is not None:
            return known
        read = self._authenticate(code)
        if len(self._authentic) >= AUTHENTIC_CODES_KEPT:
            self._authentic.clear()
        self._authentic[code] = read
        return read

    def _authenticate(self, code: str) -> VenueCode:
        expected = _CODE_LAYOUT.size + _TAG_BYTES
        if len(code) != 36 or not re.fullmatch(r"[A-Za-z0-9_-]+", code):
            raise InvalidVenueCodeError("this is not a Fangxin venue code")
        raw = base64.urlsafe_b64decode(code)
        if len(raw) != expected:
            raise InvalidVenueCodeError("this is not a Fangxin venue code")
        body, tag = raw[: _CODE_LAYOUT.size], raw[_CODE_LAYOUT.size :]
        if not hmac.compare_digest(keyed_hash(self._key, body)[:_TAG_BYTES], tag):
            raise InvalidVenueCodeError("this venue code is not authentic")
        header, venue_bytes, key_version = _CODE_LAYOUT.unpack(body)
        kind = _KIND_OF.get(header & 0x0F)
        if header >> 4 != _CODE_FORMAT or kind is None:
            raise InvalidVenueCodeError("this is not a Fangxin venue code")
        return VenueCode(venue_id=UUID(bytes=venue_bytes), kind=kind, key_version=key_version)
