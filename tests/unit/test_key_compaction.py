"""The key compaction duty: woken by each destruction, off the request's thread, and retried."""

from __future__ import annotations

import threading
from pathlib import Path

from infrastructure.keys.keystore import KeyStore, MasterKeys, SQLiteKeyBackend
from infrastructure.ops.duties import KeyCompaction


class Compactions:
    """A compaction that counts its rounds, fails when told to, and lets the test wait."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.fail_next = False
        self.round = threading.Event()

    def __call__(self) -> int:
        self.threads.append(threading.current_thread().name)
        self.round.set()
        if self.fail_next:
            self.fail_next = False
            raise OSError("the database went away")
        return 1


def test_a_destruction_wakes_the_compaction_on_a_thread_of_its_own(tmp_path: Path) -> None:
    keys = KeyStore(SQLiteKeyBackend(tmp_path / "keys.db"), MasterKeys({1: b"k" * 32}, 1))
    compactions = Compactions()
    duty = KeyCompaction(compactions, interval=3600)
    keys.on_destroy.append(duty.soon)
    duty.start()
    try:
        assert compactions.round.wait(timeout=10)  # the round at start
        compactions.round.clear()

        keys.destroy(["visitor:someone"])

        assert compactions.round.wait(timeout=10)
        assert compactions.threads == ["key-compaction", "key-compaction"]
    finally:
        duty.stop()
        keys.close()


def test_a_failed_compaction_is_tried_again() -> None:
    compactions = Compactions()
    compactions.fail_next = True
    duty = KeyCompaction(compactions, interval=3600)
    duty.start()
    try:
        assert compactions.round.wait(timeout=10)
        compactions.round.clear()

        duty.soon([])

        assert compactions.round.wait(timeout=10)
        assert len(compactions.threads) == 2
    finally:
        duty.stop()
