"""The Redis runner's election: the deployment's runner lock, and its failure told to all.

One process holds the lock and applies events; the others wait to take over when it expires.
While the holder fails to apply an event it says so under a key that expires with it, so every
worker's `/health` and writers know without asking the holder.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import uuid
from datetime import datetime
from importlib import resources

import redis

from infrastructure.projections.health import Failures, RunnerState

LOCK_TTL_MS = 5000
RENEW_EVERY = 1.0
# How long the runner's failure stays announced in Redis unless the runner says it again (it
# does every RENEW_EVERY while it fails): a runner that died with it does not hold it for ever.
FAULT_TTL_MS = LOCK_TTL_MS

_SCRIPTS = resources.files("infrastructure.projections")
RENEW_SCRIPT = (_SCRIPTS / "renew.lua").read_text()
RELEASE_SCRIPT = (_SCRIPTS / "release.lua").read_text()


class RunnerLock:
    """The deployment's runner lock, held by at most one process at a time."""

    def __init__(self, client: redis.Redis, key: str) -> None:
        self._client = client
        self._key = key
        self._token = f"{os.getpid()}:{uuid.uuid4().hex}"
        self._renew = client.register_script(RENEW_SCRIPT)
        self._held_until = 0.0

    @property
    def held(self) -> bool:
        """Whether this process may apply events now."""
        return time.monotonic() < self._held_until

    def hold(self) -> bool:
        """Take the lock, or renew it if this process has it; whether it holds it now."""
        now = time.monotonic()
        if self._client.set(self._key, self._token, nx=True, px=LOCK_TTL_MS) or int(
            self._renew(keys=[self._key], args=[self._token, LOCK_TTL_MS])
        ):
            # Trust the lock for a little less than its lifetime, so two never overlap.
            self._held_until = now + LOCK_TTL_MS / 1000 * 0.6
            return True
        self._held_until = 0.0
        return False

    def lost(self) -> None:
        """Redis could not be reached: trust the lock no more."""
        self._held_until = 0.0

    def release(self) -> None:
        """Give the lock up, if this process still has it."""
        with contextlib.suppress(redis.RedisError):  # the lock expires by itself anyway
            self._client.eval(RELEASE_SCRIPT, 1, self._key, self._token)
        self._held_until = 0.0


class FaultNotice:
    """The runner's failure as told in Redis, and as this process last learned it."""

    def __init__(self, client: redis.Redis, key: str, failures: Failures) -> None:
        self._client = client
        self._key = key
        self._failures = failures
        # Until when this process takes the runner (in another process) for failing, from the
        # announcement in Redis it read last: writers need not ask again meanwhile.
        self._failing_until = 0.0

    def told(self) -> RunnerState | None:
        """The failure another process's runner announced, or None."""
        try:
            raw = self._client.get(self._key)
        except redis.RedisError:
            return None  # /health reports Redis itself
        if raw is None:
            return None
        try:
            told = json.loads(raw)
            return RunnerState("failing", datetime.fromisoformat(told["since"]), told["error"])
        except (ValueError, KeyError, TypeError):
            return RunnerState("failing")

    def failing(self, ask: bool) -> bool:
        """Whether the runner fails: this process's, or (asking Redis if `ask`) another's."""
        if self._failures.current is not None:
            return True
        now = time.monotonic()
        if now < self._failing_until:
            return True
        if ask and self._client.exists(self._key):
            self._failing_until = now + RENEW_EVERY
            return True
        return False

    def moved(self) -> None:
        """The position moved: the runner applies events again."""
        self._failing_until = 0.0

    def announce(self) -> None:
        """Tell every worker (their /health) that the runner fails, for the next FAULT_TTL_MS."""
        fault = self._failures.current
        if fault is not None and fault.since is not None:
            told = json.dumps({"since": fault.since.isoformat(), "error": fault.error})
            self._client.set(self._key, told, px=FAULT_TTL_MS)

    def clear(self) -> None:
        """The runner recovered."""
        self._client.delete(self._key)
