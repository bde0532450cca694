"""The master key: its versions, from `FANGXIN_MASTER_KEY` or the data folder's `master.key`.

Every data key is wrapped by one master key version. A version is retired by rewrapping every
live key under a newer one (`fangxin keys rotate-master`) and then removing it from the
configuration: every copy of a key wrapped under it (in a WAL, a backup, a replica) is then
unreadable, and so is every key that was destroyed while it was in force.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from infrastructure.keys.crypto import KEY_BYTES

MASTER_KEY_FILE = "master.key"


class MasterKeys:
    """The master key versions; the current one wraps new keys, older ones unwrap older keys."""

    def __init__(self, keys: dict[int, bytes], current: int) -> None:
        if current not in keys or any(len(k) != KEY_BYTES for k in keys.values()):
            raise ValueError("master keys must be 32 bytes, and the current one among them")
        self.keys = keys
        self.current = current

    @classmethod
    def parse(cls, text: str) -> MasterKeys:
        """`BASE64` (version 1) or `VERSION:BASE64,VERSION:BASE64,...` (first is current)."""
        keys: dict[int, bytes] = {}
        order: list[int] = []
        for raw in text.replace("\n", ",").split(","):
            part = raw.strip()
            if not part:
                continue
            version_text, _, key_text = part.rpartition(":")
            try:
                version = int(version_text) if version_text else 1
                keys[version] = base64.b64decode(key_text, validate=True)
            except (ValueError, binascii.Error):
                raise ValueError("a master key is not VERSION:BASE64") from None
            order.append(version)
        if not order:
            raise ValueError("no master key given")
        return cls(keys, order[0])

    def render(self) -> str:
        """The text form `parse` reads (current first, then older versions, newest first)."""
        versions = [
            self.current,
            *sorted((v for v in self.keys if v != self.current), reverse=True),
        ]
        return ",".join(f"{v}:{base64.b64encode(self.keys[v]).decode()}" for v in versions)

    def with_new_version(self) -> MasterKeys:
        """These versions and a new random one, which becomes current."""
        version = max(self.keys) + 1
        return MasterKeys({**self.keys, version: secrets.token_bytes(KEY_BYTES)}, version)

    def without(self, versions: Iterable[int]) -> MasterKeys:
        """These versions but the given ones (never the current one)."""
        retired = set(versions)
        if self.current in retired:
            raise ValueError(f"version {self.current} is the current master key")
        return MasterKeys({v: k for v, k in self.keys.items() if v not in retired}, self.current)

    @staticmethod
    def load_or_create(configured: str, data_dir: Path) -> MasterKeys:
        """The configured master key, or the data folder's own (made at first start, mode 0600)."""
        if configured:
            return MasterKeys.parse(configured)
        path = data_dir / MASTER_KEY_FILE
        if path.exists():
            return MasterKeys.parse(path.read_text())
        data_dir.mkdir(parents=True, exist_ok=True)
        keys = MasterKeys({1: secrets.token_bytes(KEY_BYTES)}, 1)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(keys.render() + "\n")
        return keys


class MasterKeyFile:
    """The embedded deployment's `master.key`, read again whenever it was replaced.

    The running service follows `fangxin keys new-master` and `retire-master` this way, so the
    master key rotates while it runs, as it does in production with a rolling restart.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._keys: MasterKeys | None = None

    def read(self) -> MasterKeys:
        """The versions the file holds now."""
        status = self.path.stat()
        stamp = (status.st_ino, status.st_mtime_ns, status.st_size)
        if self._keys is None or stamp != self._stamp:
            self._keys = MasterKeys.parse(self.path.read_text())
            self._stamp = stamp
        return self._keys

    def write(self, keys: MasterKeys) -> None:
        """Replace the file at once (a reader sees the old versions or the new ones, whole)."""
        staging = self.path.with_name(f".{self.path.name}.{secrets.token_hex(8)}")
        fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(keys.render() + "\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(staging, self.path)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        folder = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
