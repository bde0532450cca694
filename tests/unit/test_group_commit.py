"""Group commit keeps every promise: durable before answered, one bad item fails alone."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from infrastructure.eventstore.group_commit import GroupCommit


class ErasedKeyError(Exception):
    """Stands for an item the mapper cannot encrypt: its key was destroyed meanwhile."""


class FakeStore:
    """A save that records its batches; a batch holding a "bad" event conflicts, one holding
    an "erased" event cannot be encrypted."""

    def __init__(self) -> None:
        self.saved: list[Any] = []
        self.calls: list[list[Any]] = []
        self.gate = threading.Event()
        self.gate.set()

    def save(self, *events: Any, writers: list[int] | None = None) -> list[Any]:
        self.gate.wait()
        self.calls.append(list(events))
        if "bad" in events:
            raise IntegrityError("duplicate")
        if "erased" in events:
            raise ErasedKeyError("this data was erased and cannot be written again")
        # A "taken" event is at a version stored already: its writer is refused whole, and the
        # rest of the batch saved, as PostgreSQL's insert function does.
        assert writers is not None
        assert len(writers) == len(events)
        refused = {w for w, e in zip(writers, events, strict=True) if e == "taken"}
        kept = [e for w, e in zip(writers, events, strict=True) if w not in refused]
        self.saved.extend(kept)
        return [
            None if w in refused else f"recorded {e}" for w, e in zip(writers, events, strict=True)
        ]


def run_concurrently(
    commit: GroupCommit, items: list[list[str]], catch: type[Exception] = IntegrityError
) -> list[Any]:
    results: list[Any] = [None] * len(items)

    def write(i: int) -> None:
        try:
            results[i] = commit.save(items[i])
        except catch as exc:
            results[i] = exc

    threads = [threading.Thread(target=write, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_concurrent_writes_share_batches_and_each_gets_its_own_recordings() -> None:
    store = FakeStore()
    store.gate.clear()  # hold the first flush so that the others pile up behind it
    commit = GroupCommit(store.save, max_batch=50, max_wait=0.05)
    items = [[f"e{i}a", f"e{i}b"] for i in range(40)]
    releaser = threading.Timer(0.1, store.gate.set)
    releaser.start()
    results = run_concurrently(commit, items)
    commit.close()
    assert results == [[f"recorded {e}" for e in item] for item in items]
    assert sorted(store.saved) == sorted(e for item in items for e in item)
    assert len(store.calls) < len(items)  # batched
    assert commit.stats.items == 40
    assert commit.stats.largest > 1


def test_one_bad_item_fails_alone_and_the_rest_of_its_batch_is_stored() -> None:
    store = FakeStore()
    store.gate.clear()
    commit = GroupCommit(store.save, max_batch=50, max_wait=0.05)
    items = [["good1"], ["bad"], ["good2"], ["good3"]]
    threading.Timer(0.1, store.gate.set).start()
    results = run_concurrently(commit, items)
    commit.close()
    assert isinstance(results[1], IntegrityError)
    assert results[0] == ["recorded good1"]
    assert results[2] == ["recorded good2"]
    assert results[3] == ["recorded good3"]
    assert sorted(store.saved) == ["good1", "good2", "good3"]
    assert commit.stats.retried_alone >= 1


def test_a_store_failure_reaches_every_writer_of_the_batch() -> None:
    def broken(*events: Any, **_: Any) -> list[Any]:
        raise OSError("disk gone")

    commit = GroupCommit(broken, max_batch=10, max_wait=0.01)
    with pytest.raises(OSError, match="disk gone"):
        commit.save(["x"])
    commit.close()


def test_one_item_that_cannot_be_stored_fails_alone() -> None:
    store = FakeStore()
    store.gate.clear()
    commit = GroupCommit(store.save, max_batch=50, max_wait=0.05)
    items = [["good1"], ["erased"], ["good2"]]
    threading.Timer(0.1, store.gate.set).start()
    results = run_concurrently(commit, items, catch=ErasedKeyError)
    commit.close()
    assert isinstance(results[1], ErasedKeyError)
    assert results[0] == ["recorded good1"]
    assert results[2] == ["recorded good2"]
    assert sorted(store.saved) == ["good1", "good2"]


def test_an_unreachable_store_fails_the_batch_once_without_retrying_each_item() -> None:
    calls: list[list[Any]] = []
    gate = threading.Event()

    def unreachable(*events: Any, **_: Any) -> list[Any]:
        gate.wait()
        calls.append(list(events))
        raise OperationalError("connection refused")

    commit = GroupCommit(unreachable, max_batch=50, max_wait=0.05)
    threading.Timer(0.1, gate.set).start()
    results = run_concurrently(commit, [["a"], ["b"], ["c"]], catch=OperationalError)
    commit.close()
    assert all(isinstance(r, OperationalError) for r in results)
    assert sum(len(call) for call in calls) == 3  # each event was tried once, not again alone


def test_a_closed_group_commit_refuses_new_writes() -> None:
    commit = GroupCommit(FakeStore().save)
    commit.close()
    with pytest.raises(RuntimeError, match="closed"):
        commit.save(["x"])


def test_writers_on_an_event_loop_share_batches_and_one_bad_item_fails_alone() -> None:
    store = FakeStore()
    store.gate.clear()
    commit = GroupCommit(store.save, max_batch=50, max_wait=0.05)
    items = [[f"e{i}"] for i in range(30)] + [["bad"]]

    async def write_all() -> list[Any]:
        threading.Timer(0.1, store.gate.set).start()
        return await asyncio.gather(
            *(commit.save_async(item) for item in items), return_exceptions=True
        )

    results = asyncio.run(write_all())
    commit.close()
    assert isinstance(results[-1], IntegrityError)
    assert results[:-1] == [[f"recorded e{i}"] for i in range(30)]
    assert sorted(store.saved) == sorted(f"e{i}" for i in range(30))
    assert commit.stats.largest > 1


def test_writers_in_threads_and_on_a_loop_share_one_batch() -> None:
    store = FakeStore()
    store.gate.clear()
    commit = GroupCommit(store.save, max_batch=50, max_wait=0.05)

    async def write_on_loop() -> list[Any]:
        return await commit.save_async(["from the loop"])

    threaded: list[Any] = []
    worker = threading.Thread(target=lambda: threaded.append(commit.save(["from a thread"])))
    worker.start()
    threading.Timer(0.1, store.gate.set).start()
    looped = asyncio.run(write_on_loop())
    worker.join()
    commit.close()
    assert looped == ["recorded from the loop"]
    assert threaded == [["recorded from a thread"]]
    assert len(store.calls) == 1  # one transaction for both


def test_writers_are_answered_only_after_their_batch_is_projected_in_commit_order() -> None:
    store = FakeStore()
    projected: list[list[Any]] = []
    projecting = threading.Event()
    release = threading.Event()

    def project(recordings: list[Any]) -> None:
        projecting.set()
        release.wait()
        projected.append(recordings)

    commit = GroupCommit(store.save, max_batch=1, max_wait=0.0, on_saved=project)
    answered: list[Any] = []
    first = threading.Thread(target=lambda: answered.append(commit.save(["one"])))
    first.start()
    assert projecting.wait(5)
    # Durable, not projected yet: the writer is still waiting, and the next batch commits.
    second = threading.Thread(target=lambda: answered.append(commit.save(["two"])))
    second.start()
    for _ in range(500):
        if store.saved == ["one", "two"]:
            break
        threading.Event().wait(0.01)
    assert store.saved == ["one", "two"]
    assert answered == []
    release.set()
    first.join(5)
    second.join(5)
    commit.close()
    assert projected == [["recorded one"], ["recorded two"]]
    assert sorted(answered) == [["recorded one"], ["recorded two"]]


@pytest.mark.parametrize(
    ("losing", "refused"),
    [("taken", 1), ("bad", 0)],  # refused by the store, or failing its save: told alike
)
def test_a_refused_writer_hears_the_conflict_only_once_the_batch_before_is_projected(
    losing: str, refused: int
) -> None:
    store = FakeStore()
    projecting = threading.Event()
    release = threading.Event()
    projected: list[list[Any]] = []

    def project(recordings: list[Any]) -> None:
        projecting.set()
        release.wait(10)
        projected.append(recordings)

    # Batches of one: the winner's, then the refused writer's, which has nothing to project.
    commit = GroupCommit(store.save, max_batch=1, max_wait=0.0, on_saved=project)
    outcome: list[Any] = []
    try:
        winner = threading.Thread(target=commit.save, args=(["won"],), daemon=True)
        winner.start()
        assert projecting.wait(5)
        loser = threading.Thread(
            target=lambda: outcome.extend(run_concurrently(commit, [[losing]])), daemon=True
        )
        loser.start()
        for _ in range(500):
            if len(store.calls) == 2:
                break
            threading.Event().wait(0.01)
        assert len(store.calls) == 2  # refused already, by the store
        # It would look again at once: not before the read models show what won.
        assert outcome == []
    finally:
        release.set()
    winner.join(5)
    loser.join(5)
    commit.close()
    assert projected == [["recorded won"]]
    assert len(outcome) == 1
    assert isinstance(outcome[0], IntegrityError)
    assert commit.stats.refused == refused


def test_a_conflict_the_store_blames_retries_that_item_alone_and_the_rest_together() -> None:
    store = FakeStore()
    # Flushed when full, never on a timer: the four writers always share one batch.
    commit = GroupCommit(
        store.save, max_batch=4, max_wait=60, blame=lambda exc: lambda e: e == "bad"
    )
    items = [["good1"], ["bad"], ["good2"], ["good3"]]
    results = run_concurrently(commit, items)
    commit.close()
    assert isinstance(results[1], IntegrityError)
    assert [results[0], results[2], results[3]] == [
        ["recorded good1"],
        ["recorded good2"],
        ["recorded good3"],
    ]
    assert sorted(store.saved) == ["good1", "good2", "good3"]
    assert len(store.calls[0]) == 4
    assert sorted(store.calls[1]) == ["good1", "good2", "good3"]  # the rest, in one transaction
    assert store.calls[2:] == [["bad"]]
    assert commit.stats.retried_alone == 1


def test_a_writer_the_store_refuses_hears_the_conflict_and_the_rest_is_saved_in_one_go() -> None:
    store = FakeStore()
    # Flushed when full, never on a timer: the four writers always share one batch.
    commit = GroupCommit(store.save, max_batch=4, max_wait=60)
    items = [["good1"], ["new", "taken"], ["good2", "good3"], ["good4"]]
    results = run_concurrently(commit, items)
    commit.close()
    assert isinstance(results[1], IntegrityError)
    assert [results[0], results[2], results[3]] == [
        ["recorded good1"],
        ["recorded good2", "recorded good3"],
        ["recorded good4"],
    ]
    assert len(store.calls) == 1  # nothing saved again
    assert sorted(store.saved) == ["good1", "good2", "good3", "good4"]  # nor "new": atomic
    assert (commit.stats.refused, commit.stats.retried_alone) == (1, 0)


def test_a_lone_write_that_fails_hears_its_error_without_being_saved_again() -> None:
    store = FakeStore()
    commit = GroupCommit(store.save, max_batch=1, max_wait=0.001)
    with pytest.raises(IntegrityError):
        commit.save(["bad"])
    commit.close()
    assert store.calls == [["bad"]]
    assert commit.stats.retried_alone == 0


def test_a_writer_that_waited_through_the_previous_flush_is_flushed_without_waiting_again() -> None:
    store = FakeStore()
    store.gate.clear()  # the first flush holds until the test lets it go
    saving = threading.Event()

    def save(*events: Any, writers: list[int]) -> list[Any]:
        saving.set()
        return store.save(*events, writers=writers)

    now = [0.0]
    # Full at two; otherwise a writer waits 30 s of the fake clock, never reached by itself.
    commit = GroupCommit(save, max_batch=2, max_wait=30, clock=lambda: now[0])
    first = threading.Thread(target=run_concurrently, args=(commit, [["a"], ["b"]]))
    first.start()
    assert saving.wait(5)  # the full batch is being saved, and its save is held
    late: list[Any] = []
    writer = threading.Thread(target=lambda: late.append(commit.save(["c"])))
    writer.start()
    for _ in range(500):
        with commit._cond:
            if commit._pending:
                break
        threading.Event().wait(0.01)
    now[0] = 31.0  # "c" waits its whole 30 s while the first batch is being saved
    store.gate.set()
    writer.join(5)
    first.join(5)
    assert late == [["recorded c"]]  # flushed at once, not held for another 30 s
    assert store.calls == [["a", "b"], ["c"]]
    commit.close()


def test_writers_are_answered_once_settled_while_the_next_batch_is_projected_meanwhile() -> None:
    store = FakeStore()
    sent: list[Any] = []
    settling = threading.Event()
    release = threading.Event()

    def settle(recordings: list[Any]) -> None:
        settling.set()
        release.wait()

    commit = GroupCommit(store.save, max_batch=1, max_wait=0.0, on_saved=sent.append, settle=settle)
    answered: list[Any] = []
    first = threading.Thread(target=lambda: answered.append(commit.save(["one"])))
    first.start()
    assert settling.wait(5)
    # Sent, not settled: its writer still waits, and the next batch is saved and sent.
    second = threading.Thread(target=lambda: answered.append(commit.save(["two"])))
    second.start()
    for _ in range(500):
        if sent == [["recorded one"], ["recorded two"]]:
            break
        threading.Event().wait(0.01)
    assert sent == [["recorded one"], ["recorded two"]]
    assert answered == []
    release.set()
    first.join(5)
    second.join(5)
    commit.close()
    assert sorted(answered) == [["recorded one"], ["recorded two"]]


def test_a_batch_that_fails_to_settle_still_answers_its_writers() -> None:
    store = FakeStore()

    def settle(recordings: list[Any]) -> None:
        raise TimeoutError("the read models are behind")

    commit = GroupCommit(store.save, max_batch=1, max_wait=0.0, on_saved=list, settle=settle)
    assert commit.save(["one"]) == ["recorded one"]  # durable: the write stands
    commit.close()
    assert store.saved == ["one"]


def test_a_batch_applied_at_once_is_answered_without_waiting_to_settle() -> None:
    store = FakeStore()
    settled: list[Any] = []
    commit = GroupCommit(
        store.save,
        max_batch=1,
        max_wait=0.0,
        on_saved=lambda recordings: recordings != ["recorded parked"],
        settle=settled.append,
    )
    assert commit.save(["applied"]) == ["recorded applied"]
    assert commit.save(["parked"]) == ["recorded parked"]
    commit.close()
    assert settled == [["recorded parked"]]  # only the batch not applied at once was waited for
