"""Many concurrent check-ins through the API: batched, all stored, idempotent inside a batch,
and one check-in that cannot be stored fails alone."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest
from eventsourcing.persistence import IntegrityError, StoredEvent
from litestar.testing import TestClient

from domain.ids import derive_id
from domain.visits import Visit
from infrastructure.bootstrap import build_services
from infrastructure.services import Services
from infrastructure.settings import Settings, load_settings
from interface.http.app import create_app
from tests.conftest import CountingBackend, World, bearer
from tests.live import Server, running_server

DAY = timedelta(days=1)


def register(server: Server, n_visitors: int) -> tuple[list[str], str]:
    with server.client() as client:
        merchant = client.post(
            "/v1/merchants", json={"name": "M", "contact_phone": "+8613900000000"}
        ).json()
        venue = client.post(
            "/v1/venues",
            json={"name": "V", "address": "A", "region": "110105", "category": "c"},
            headers={"Authorization": f"Bearer {merchant['token']}"},
        ).json()
        tokens = [
            client.post("/v1/visitors", json={"name": f"P{i}", "phone": f"+86138{i:08d}"}).json()[
                "token"
            ]
            for i in range(n_visitors)
        ]
    return tokens, venue["code"]


def test_concurrent_check_ins_are_all_stored_and_retries_create_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    answers: dict[tuple[int, int], list[Any]] = {}
    with running_server(data, FANGXIN_GROUP_COMMIT_WAIT_MS="5") as server:
        tokens, code = register(server, 24)

        def visitor(i: int) -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                headers = {"Authorization": f"Bearer {tokens[i]}"}
                for round_ in range(5):
                    key = {"Idempotency-Key": f"scan-{i}-{round_}"}

                    def send(_: int, key: dict[str, str] = key) -> httpx.Response:
                        return client.post(
                            "/v1/check-ins", json={"code": code}, headers=headers | key
                        )

                    # The same scan sent twice at once: both land in one batch or two.
                    with ThreadPoolExecutor(2) as pool:
                        got = list(pool.map(send, range(2)))
                    answers[(i, round_)] = [(r.status_code, r.json().get("visit_id")) for r in got]

        threads = [threading.Thread(target=visitor, args=(i,)) for i in range(len(tokens))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    assert len(answers) == 24 * 5
    acknowledged: set[UUID] = set()
    for pair in answers.values():
        assert [status for status, _ in pair] == [201, 201]
        assert pair[0][1] == pair[1][1]  # a retry answers the first visit
        acknowledged.add(UUID(pair[0][1]))
    # Nothing answered 201 is missing from the log: read it back after the server stopped.
    services = build_services(load_settings({}, data_dir=str(data)))
    try:
        stored = {
            visit_id
            for visit_id in acknowledged
            if isinstance(services.store.repository.get(visit_id), Visit)
        }
        assert stored == acknowledged
        checked_in = [
            n
            for n in services.store.recorder.select_notifications(start=None, limit=100_000)
            if n.topic.endswith("Visit.CheckedIn")
        ]
        assert len(checked_in) == len(acknowledged)  # no duplicate visits
    finally:
        services.close()


def test_a_check_in_that_cannot_be_stored_fails_alone_in_its_batch(settings: Settings) -> None:
    # A long wait, and the check-ins released together, so that they share one batch even on
    # a loaded machine.
    slow = msgspec.structs.replace(settings, group_commit_wait_ms=2000.0)
    services = build_services(slow)
    recorder = services.store.recorder
    try:
        with TestClient(create_app(slow, services=services)) as client:
            people = World(client)
            venue = people.venue(people.merchant())
            visitors = [people.visitor() for _ in range(6)]
            # The store refuses every transaction that holds the third visitor's new visit.
            poisoned = derive_id(f"visit|{visitors[2]['visitor_id']}", "scan-2")
            # Whichever insert the store's group commit calls (PostgreSQL's names writers).
            name = "insert_by_writer" if hasattr(recorder, "insert_by_writer") else "insert_events"
            insert = getattr(recorder, name)

            def refusing(stored: Sequence[StoredEvent], *args: Any, **kwargs: Any) -> Any:
                if any(e.originator_id == poisoned for e in stored):
                    raise IntegrityError("refused by the test")
                return insert(stored, *args, **kwargs)

            setattr(recorder, name, refusing)

            together = threading.Barrier(len(visitors))

            def check_in(i: int) -> httpx.Response:
                headers = {**bearer(visitors[i]["token"]), "Idempotency-Key": f"scan-{i}"}
                together.wait()
                return client.post("/v1/check-ins", json={"code": venue["code"]}, headers=headers)

            with ThreadPoolExecutor(len(visitors)) as pool:
                answers = list(pool.map(check_in, range(len(visitors))))
            assert services.committer is not None
            assert services.committer.stats.retried_alone >= 1  # they did share a batch
        statuses = [a.status_code for a in answers]
        assert statuses == [201, 201, 409, 201, 201, 201], [a.text for a in answers]
        now = services.app.ports.clock.now()
        stored = services.app.visits_of(UUID(visitors[2]["visitor_id"]), now - DAY, now + DAY)
        assert stored == []
        for answer in answers[:2] + answers[3:]:
            visit = services.store.repository.get(UUID(answer.json()["visit_id"]))
            assert isinstance(visit, Visit)
    finally:
        services.close()


def test_a_check_in_whose_key_was_destroyed_meanwhile_is_refused_and_stores_nothing(
    world: World, services: Services
) -> None:
    venue = world.venue(world.merchant())
    visitor = world.visitor()
    # Erased meanwhile: the key is destroyed while the token is still known to this worker.
    services.keys.destroy_visitor(UUID(visitor["visitor_id"]))

    answer = world.client.post(
        "/v1/check-ins", json={"code": venue["code"]}, headers=bearer(visitor["token"])
    )

    assert answer.status_code == 410, answer.text
    assert answer.json()["type"] == "/problems/data-erased"
    checked_in = [
        n
        for n in services.store.recorder.select_notifications(start=None, limit=10_000)
        if n.topic.endswith("Visit.CheckedIn")
    ]
    assert checked_in == []


def test_a_check_in_whose_keys_are_not_in_memory_is_mapped_off_the_loop_and_stored(
    world: World, services: Services
) -> None:
    venue, visitor = world.venue(world.merchant()), world.visitor()
    (registered,) = services.store.events.get(UUID(visitor["visitor_id"]))
    services.keys.forget_all()  # as in a worker that has not seen this visitor lately
    assert services.store.mapped([registered]) == [registered]  # left to the group commit

    visit = world.check_in(visitor, venue)

    stored = services.store.repository.get(UUID(visit["visit_id"]))
    assert isinstance(stored, Visit)
    assert [v["visit_id"] for v in world.visits(visitor)] == [visit["visit_id"]]


def test_a_batch_whose_keys_are_not_in_memory_reads_them_all_in_one_go(
    world: World, services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    venue = world.venue(world.merchant())
    world.check_in(world.visitor(), venue)  # today's key exists
    guardians = [UUID(world.visitor()["visitor_id"]) for _ in range(3)]
    visits = [
        Visit(
            id=uuid4(),
            visitor_id=guardian,
            guardian_id=guardian,
            venue_id=UUID(venue["venue_id"]),
            at=services.app.ports.clock.now(),
            via="scan",
        )
        for guardian in guardians
    ]
    events = [event for visit in visits for event in visit.collect_events()]
    services.keys.forget_all()  # a worker that has seen none of these visitors lately
    counting = CountingBackend(services.keys.backend)
    monkeypatch.setattr(services.keys, "_backend", counting)

    services.store.record(*services.store.mapped(events))

    assert counting.reads == ["get_many 4"]  # three visitors' keys and the day's
    assert [services.store.repository.get(visit.id).venue_id for visit in visits] == [
        UUID(venue["venue_id"])
    ] * 3
