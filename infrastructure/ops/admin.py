"""The platform admin's token: `FANGXIN_ADMIN_TOKEN`, or one made at first start.

Only its SHA-256 is kept (beside the keys); `fangxin admin token` replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable

from infrastructure.keys.keystore import KeyBackend

SETTING = "admin_token_sha256"


class AdminTokens:
    """Recognises the admin's bearer token."""

    def __init__(
        self,
        backend: KeyBackend,
        configured: str,
        before_issue: Callable[[], None] | None = None,
    ) -> None:
        self._backend = backend
        self._configured = _hash(configured) if configured else None
        # Audits each issue first: a new admin token is made only once that is on record.
        self._before_issue = before_issue

    def is_admin(self, token: str) -> bool:
        """Whether this bearer token is the admin's (constant-time comparison)."""
        return self.is_admin_hash(_hash(token))

    def is_admin_hash(self, token_hash: str) -> bool:
        """Whether a token's SHA-256 (as `TokenCredentials.token_hash` makes it) is the
        current admin token's: a console session keeps only the hash, and re-checks it."""
        expected = self._configured or self._backend.get_setting(SETTING)
        return expected is not None and hmac.compare_digest(expected, token_hash)

    def issue(self) -> str:
        """Make a new admin token (the old one stops working) and return it, once."""
        if self._before_issue is not None:
            self._before_issue()
        token = secrets.token_urlsafe(32)
        self._backend.set_setting(SETTING, _hash(token))
        return token

    def first_start(self) -> str | None:
        """At first start without a configured token, make one; None when there is one."""
        if self._configured or self._backend.get_setting(SETTING):
            return None
        return self.issue()


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
