"""The group commit on PostgreSQL: its recorder, and conflicts that fail only their own writer."""

from __future__ import annotations

from dataclasses import astuple
from typing import Any
from urllib.parse import urlparse

import pytest
from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, Notification, Recording

from infrastructure.eventstore.environment import blame_duplicate
from infrastructure.eventstore.group_commit import GroupCommit
from infrastructure.eventstore.postgres import TOPIC as RECORDER_TOPIC
from infrastructure.eventstore.postgres import GroupCommitRecorder
from infrastructure.eventstore.postgres_arrays import event_columns, int_array
from tests.integration.conftest import DATABASE_URL
from tests.unit.test_group_commit import run_concurrently


class Store(Application[Any]):
    """An event store and nothing else."""

    def record_events(self, *events: Any, writers: list[int] | None = None) -> Any:
        if writers is None:
            return self.events.put(list(events))
        recorder = self.recorder
        assert isinstance(recorder, GroupCommitRecorder)
        stored = [self.mapper.to_stored_event(e) for e in events]
        ids = recorder.insert_by_writer(stored, writers)
        return [
            None if i is None else Recording(e, Notification(*astuple(s), id=i))
            for e, s, i in zip(events, stored, ids, strict=True)
        ]


def application(schema: str) -> Store:
    url = urlparse(DATABASE_URL)
    return Store(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/"),
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": url.username or "postgres",
            "POSTGRES_PASSWORD": url.password or "",
            "POSTGRES_SCHEMA": schema,
            "APPLICATION_RECORDER_TOPIC": RECORDER_TOPIC,
        }
    )


def two_copies_changed(app: Store) -> tuple[Aggregate, Aggregate]:
    """Two copies of one stored aggregate, each with a new event at the same version."""
    stored = Aggregate()
    app.save(stored)
    first, second = app.repository.get(stored.id), app.repository.get(stored.id)
    first.trigger_event(Aggregate.Event)
    second.trigger_event(Aggregate.Event)
    return first, second


def test_the_recorder_stores_a_batch_in_order_and_numbers_it_in_that_order(
    pg_schema: str,
) -> None:
    app = application(pg_schema)
    assert isinstance(app.recorder, GroupCommitRecorder)
    aggregates = [Aggregate() for _ in range(5)]
    for aggregate in aggregates[2:]:
        aggregate.trigger_event(Aggregate.Event)
    events = [e for a in aggregates for e in a.collect_events()]
    recordings = app.record_events(*events)
    ids = [r.notification.id for r in recordings]
    assert [r.domain_event for r in recordings] == events
    assert ids == sorted(ids)
    assert len(set(ids)) == len(events)
    stored = app.recorder.select_notifications(start=ids[0], limit=100)
    assert [(n.id, n.originator_id, n.originator_version) for n in stored] == [
        (i, e.originator_id, e.originator_version) for i, e in zip(ids, events, strict=True)
    ]
    assert [app.repository.get(a.id).version for a in aggregates] == [1, 1, 2, 2, 2]


def test_the_duplicate_key_postgresql_names_blames_exactly_the_events_that_hold_it(
    pg_schema: str,
) -> None:
    app = application(pg_schema)
    first, second = two_copies_changed(app)
    fresh = Aggregate()
    events = [*fresh.collect_events(), *first.collect_events(), *second.collect_events()]
    try:
        app.events.put(events)
    except IntegrityError as exc:
        implicated = blame_duplicate(exc)
    else:
        raise AssertionError("two events at one version must conflict")
    assert implicated is not None
    assert [implicated(e) for e in events] == [False, True, True]
    assert blame_duplicate(IntegrityError("no detail")) is None


def test_a_writer_at_a_taken_version_is_refused_whole_and_the_rest_stored_in_one_statement(
    pg_schema: str,
) -> None:
    app = application(pg_schema)
    winner, stale = two_copies_changed(app)
    app.save(winner)  # the stale copy's event is now at a version that is taken
    # The stale writer also creates a new aggregate: refused whole, that is not stored either.
    fresh_of_stale = Aggregate()
    writers = [Aggregate().collect_events() for _ in range(6)]
    writers.append([*fresh_of_stale.collect_events(), *stale.collect_events()])
    before = app.recorder.max_notification_id()
    # Flushed when full, never on a timer: the seven writers always share one batch.
    commit = GroupCommit(
        app.record_events, max_batch=len(writers), max_wait=60, blame=blame_duplicate
    )
    results = run_concurrently(commit, writers)
    commit.close()
    assert isinstance(results[-1], IntegrityError)
    with pytest.raises(AggregateNotFoundError):
        app.repository.get(fresh_of_stale.id)
    for events, result in zip(writers[:-1], results[:-1], strict=True):
        assert isinstance(result, list)
        assert len(result) == 1
        assert app.repository.get(events[0].originator_id).version == 1
    assert commit.stats.largest == len(writers)
    assert (commit.stats.refused, commit.stats.retried_alone) == (1, 0)
    # One statement, nothing rolled back: the six stored events took the next six ids.
    ids = [
        n.id
        for n in app.recorder.select_notifications(
            start=before or 0, limit=10, inclusive_of_start=False
        )
    ]
    assert ids == list(range((before or 0) + 1, (before or 0) + 7))


def test_two_writers_of_one_batch_at_one_version_are_told_apart_by_saving_alone(
    pg_schema: str,
) -> None:
    app = application(pg_schema)
    first, second = two_copies_changed(app)  # neither stored: they collide within the batch
    writers = [Aggregate().collect_events() for _ in range(5)]
    writers += [first.collect_events(), second.collect_events()]
    commit = GroupCommit(
        app.record_events, max_batch=len(writers), max_wait=60, blame=blame_duplicate
    )
    results = run_concurrently(commit, writers)
    commit.close()
    outcomes = results[-2:]
    assert sum(isinstance(r, IntegrityError) for r in outcomes) == 1
    assert sum(isinstance(r, list) for r in outcomes) == 1
    assert app.repository.get(first.id).version == 2
    for events, result in zip(writers[:-2], results[:-2], strict=True):
        assert isinstance(result, list)
        assert app.repository.get(events[0].originator_id).version == 1
    assert commit.stats.retried_alone == 2  # the two named by the duplicate key, never all


def test_the_recorder_inserts_through_its_function_and_without_it_until_migrated(
    pg_schema: str, caplog: pytest.LogCaptureFixture
) -> None:
    import psycopg

    app = application(pg_schema)
    assert isinstance(app.recorder, GroupCommitRecorder)
    before = app.record_events(*Aggregate().collect_events())
    assert "fangxin migrate" not in caplog.text  # the function took that insert
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        functions = [
            name
            for (name,) in db.execute(
                "SELECT proname FROM pg_proc WHERE pronamespace = %s::regnamespace",
                (pg_schema,),
            )
            if name.startswith("fangxin_insert_")
        ]
        assert len(functions) == 1
        # A database migrated before the function existed: the insert goes on without it.
        db.execute(f'DROP FUNCTION "{pg_schema}"."{functions[0]}"')
    after = app.record_events(*Aggregate().collect_events())
    assert "fangxin migrate" in caplog.text  # it tried the function, then did without
    again = app.record_events(*Aggregate().collect_events())
    ids = [r.notification.id for r in (*before, *after, *again)]
    assert ids == sorted(ids)
    assert len(set(ids)) == 3
    assert [n.id for n in app.recorder.select_notifications(start=0, limit=10)] == ids


def test_the_conflict_check_looks_events_up_by_key_even_in_a_plan_made_when_the_table_was_empty(
    pg_schema: str,
) -> None:
    import psycopg

    app = application(pg_schema)
    recorder = app.recorder
    assert isinstance(recorder, GroupCommitRecorder)
    plans: list[str] = []
    with psycopg.connect(DATABASE_URL, autocommit=True) as db:
        db.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
        insert = recorder._call_statement  # the statement the group commit sends

        def save_batch() -> None:
            events = [e for _ in range(10) for e in Aggregate().collect_events()]
            stored = [app.mapper.to_stored_event(e) for e in events]
            db.execute(insert, (*event_columns(stored), int_array(range(10))), binary=True)

        for _ in range(8):  # PostgreSQL may keep a generic plan after the fifth call
            save_batch()
        table = f'"{pg_schema}".{recorder.events_table_name}'
        db.execute(
            f"INSERT INTO {table} (originator_id, originator_version, topic, state)"
            " SELECT gen_random_uuid(), 1, 't', '' FROM generate_series(1, 20000)"
        )
        db.execute("LOAD 'auto_explain'")
        db.execute("SET auto_explain.log_min_duration = 0")
        db.execute("SET auto_explain.log_nested_statements = on")
        db.execute("SET client_min_messages = log")
        save_batch()
    (check,) = [plan for plan in plans if "JOIN" in plan and "array_agg" in plan]
    assert "Index Only Scan" in check
    assert "Seq Scan" not in check
