"""Console sessions: a bearer token exchanged for an `HttpOnly` cookie (API.md "Conventions").

Threat model. The cookie holds only a random session id. The store (Redis in production,
the process's memory when embedded) keeps each session under a keyed hash of its id, its
record sealed with AES-GCM bound to that name; both keys come from the key store's service
key, which is wrapped by the master key. So someone who can write Redis cannot forge a
session or promote one (they can only delete or replay records), someone with a copy of the
database or Redis finds no usable id, and a script injected into a page cannot read the
cookie. Each request re-reads the principal of the stored token hash (for the admin: compares
it with the admin token's hash), so a rotated or deleted token ends its sessions at once.
Unsafe requests must echo a CSRF token that is a keyed hash of the session id: another site
can neither read it nor compute it.
"""

from __future__ import annotations

import hmac
import secrets
import threading
from base64 import urlsafe_b64encode
from datetime import datetime, timedelta
from typing import Protocol
from uuid import UUID

import msgspec
import redis
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from domain.ports import Clock, Principal
from infrastructure.keys.crypto import derive_key, keyed_hash

COOKIE = "fangxin_session"
CSRF_HEADER = "x-csrf-token"
IDLE_TIMEOUT = timedelta(minutes=30)
MAX_LIFETIME = timedelta(hours=12)
# A session's last use is rewritten at most this often: most requests only read it.
TOUCH_EVERY = timedelta(minutes=1)
SESSION_ROLES = frozenset({"merchant", "tracer", "supervisor", "auditor", "admin"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
NONCE_BYTES = 12
MAX_ID_LENGTH = 100


class SessionRecord(msgspec.Struct, frozen=True):
    """What the store keeps of a session, sealed."""

    token_hash: str
    role: str
    principal_id: UUID
    created: datetime
    seen: datetime


class SessionBackend(Protocol):
    """Where sealed session records live, under names that are keyed hashes."""

    def get(self, name: str) -> bytes | None:
        """The sealed record, or None."""
        ...

    def put(self, name: str, sealed: bytes, ttl: timedelta) -> None:
        """Store or replace a record; it may vanish after `ttl`."""
        ...

    def delete(self, name: str) -> None:
        """Forget a record."""
        ...


class MemoryBackend:
    """The embedded deployment's sessions: one process, forgotten at restart."""

    def __init__(self) -> None:
        self._records: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def get(self, name: str) -> bytes | None:
        with self._lock:
            return self._records.get(name)

    def put(self, name: str, sealed: bytes, ttl: timedelta) -> None:
        with self._lock:
            self._records[name] = sealed

    def delete(self, name: str) -> None:
        with self._lock:
            self._records.pop(name, None)


class RedisBackend:
    """Production sessions, shared by the workers; Redis expires them when idle."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._client = client
        self._prefix = prefix

    def get(self, name: str) -> bytes | None:
        value = self._client.get(self._prefix + name)
        return value if isinstance(value, bytes) else None

    def put(self, name: str, sealed: bytes, ttl: timedelta) -> None:
        self._client.set(self._prefix + name, sealed, px=int(ttl.total_seconds() * 1000))

    def delete(self, name: str) -> None:
        self._client.delete(self._prefix + name)


class Session(msgspec.Struct, frozen=True):
    """A live session: who, and the CSRF token its unsafe requests echo."""

    session_id: str
    principal: Principal
    token_hash: str
    csrf_token: str


class Sessions:
    """Opens, finds and ends console sessions."""

    def __init__(self, service_key: bytes, backend: SessionBackend, clock: Clock) -> None:
        self._name_key = derive_key(service_key, b"fangxin-session-name")
        self._csrf_key = derive_key(service_key, b"fangxin-session-csrf")
        self._seal = AESGCM(derive_key(service_key, b"fangxin-session-seal"))
        self._backend = backend
        self._clock = clock

    def open(self, principal: Principal, token_hash: str) -> Session:
        """A new session for a principal whose token was just checked."""
        session_id = secrets.token_urlsafe(32)
        now = self._clock.now()
        record = SessionRecord(token_hash, principal.role, principal.id, now, now)
        self._write(session_id, record)
        return Session(session_id, principal, token_hash, self.csrf_token(session_id))

    def find(self, session_id: str) -> Session | None:
        """The live session of a cookie's id; None when unknown, forged, idle or too old."""
        if not session_id or len(session_id) > MAX_ID_LENGTH:
            return None
        name = self._name(session_id)
        record = self._read(name)
        if record is None:
            return None
        now = self._clock.now()
        if now - record.seen > IDLE_TIMEOUT or now - record.created > MAX_LIFETIME:
            self._backend.delete(name)
            return None
        if now - record.seen > TOUCH_EVERY:
            self._write(session_id, msgspec.structs.replace(record, seen=now))
        principal = Principal(role=record.role, id=record.principal_id)
        return Session(session_id, principal, record.token_hash, self.csrf_token(session_id))

    def end(self, session_id: str) -> None:
        """Sign out: the id stops working at once."""
        if session_id and len(session_id) <= MAX_ID_LENGTH:
            self._backend.delete(self._name(session_id))

    def csrf_token(self, session_id: str) -> str:
        """The CSRF token of a session: derived, so nothing more is stored."""
        return _b64(keyed_hash(self._csrf_key, session_id.encode()))

    def csrf_matches(self, session: Session, presented: str | None) -> bool:
        """Whether an unsafe request echoed its session's CSRF token (constant time)."""
        return presented is not None and hmac.compare_digest(
            session.csrf_token.encode(), presented.encode()
        )

    def _name(self, session_id: str) -> str:
        return keyed_hash(self._name_key, session_id.encode()).hex()

    def _write(self, session_id: str, record: SessionRecord) -> None:
        name = self._name(session_id)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = nonce + self._seal.encrypt(nonce, msgspec.json.encode(record), name.encode())
        self._backend.put(name, sealed, IDLE_TIMEOUT)

    def _read(self, name: str) -> SessionRecord | None:
        sealed = self._backend.get(name)
        if sealed is None or len(sealed) <= NONCE_BYTES:
            return None
        try:
            plain = self._seal.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], name.encode())
            return msgspec.json.decode(plain, type=SessionRecord)
        except (InvalidTag, msgspec.DecodeError, msgspec.ValidationError):
            return None


def _b64(raw: bytes) -> str:
    return urlsafe_b64encode(raw).rstrip(b"=").decode()
