"""The production deployment for real: PostgreSQL log, Redis read models, several workers."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from eventsourcing.persistence import IntegrityError

from infrastructure.bootstrap import build_services
from infrastructure.projections.redis_runner import RedisProjectionRunner
from infrastructure.readmodels.redis.projection import RedisProjector
from infrastructure.services import Services
from infrastructure.settings import load_settings
from tests.checkins import check_in
from tests.integration.conftest import records_of
from tests.live import REPO, running_server


def snapshot(client: redis.Redis, prefix: str) -> dict[str, Any]:
    """Every read-model key under the prefix with its value, type-aware."""
    out: dict[str, Any] = {}
    for raw_key in client.scan_iter(match=prefix + "*", count=1000):
        key = raw_key.decode()
        if key.endswith(("runner-lock", "doorbell")) or ":answer:" in key:
            continue
        kind = client.type(key).decode()
        if kind == "string":
            out[key] = client.get(key)
        elif kind == "list":
            out[key] = client.lrange(key, 0, -1)
        elif kind == "set":
            out[key] = sorted(client.smembers(key))
        elif kind == "zset":
            out[key] = client.zrange(key, 0, -1, withscores=True)
    return out


def populate(services: Services) -> None:
    """Visitors, venues, visits, a party, an erasure, through the application."""
    app = services.app
    merchant = app.register_merchant("M", "+8613900000000", None)
    venues = [
        app.register_venue(merchant.id, f"Venue {i}", "Rd", "110105", "c", None, 60, None)
        for i in range(3)
    ]
    codes = [app.codes_of(v).code for v in app.venues_of(merchant.id)]
    people = [
        app.register_visitor(f"P{i}", f"+86138000000{i:02d}", ["kid"], None) for i in range(6)
    ]
    for i, person in enumerate(people):
        check_in(services, person.id, codes[i % 3], ["kid"] if i % 2 else [])
    for person in people[:3]:
        check_in(services, person.id, codes[(people.index(person) + 1) % 3])
    app.erase_visitor(people[4].id)
    app.rotate_codes(merchant.id, venues[0])


def test_a_rebuild_gives_back_the_same_read_models(production: dict[str, str]) -> None:
    settings = load_settings({}, **production)
    services = build_services(settings)
    try:
        populate(services)
        assert services.runner.catch_up() >= 0
        assert services.lag() == 0
        before = snapshot(services.redis, settings.redis_prefix)  # type: ignore[arg-type]
        assert len(before) > 20
        seen: list[int] = []
        rebuilt = services.runner.rebuild(lambda done, total: seen.append(done))
        assert rebuilt == services.store.recorder.max_notification_id()
        assert seen[-1] == rebuilt
        after = snapshot(services.redis, settings.redis_prefix)  # type: ignore[arg-type]
        assert after == before
    finally:
        services.close()


class CrashingProjector(RedisProjector):
    """Applies the first `survive` events of a batch, then dies like a killed process."""

    survive = 0

    def apply_batch(self, events: Any) -> int:
        applied = super().apply_batch(list(events)[: self.survive])
        raise SystemExit(f"killed after {applied} events")


def test_a_runner_killed_mid_batch_resumes_without_applying_anything_twice(
    production: dict[str, str], redis_client: redis.Redis
) -> None:
    settings = load_settings({}, **production)
    writer = build_services(settings)
    try:
        # Writes wait for the projection; let this process's runner apply them as usual.
        populate(writer)
        writer.runner.stop()
        total = writer.store.recorder.max_notification_id() or 0
        # A second deployment's worth of read models under a fresh prefix, built by a runner
        # that dies half-way through its first batch.
        crash_prefix = settings.redis_prefix + "crash:"
        crashing = CrashingProjector(redis_client, records_of(crash_prefix), 180)
        crashing.survive = total // 2
        runner = RedisProjectionRunner(
            writer.store.recorder, writer.store.mapper, crashing, redis_client, also=[]
        )
        assert runner._hold_lock()
        with pytest.raises(SystemExit):
            runner.catch_up()
        assert crashing.position() == total // 2
        runner.stop()
        # The restarted runner carries on from the stored position.
        restarted = RedisProjectionRunner(
            writer.store.recorder,
            writer.store.mapper,
            RedisProjector(redis_client, records_of(crash_prefix), 180),
            redis_client,
            also=[],
        )
        assert restarted._hold_lock()
        assert restarted.catch_up() == total - total // 2
        restarted.stop()
        # A fresh rebuild from zero under a third prefix gives exactly the same state.
        fresh_prefix = settings.redis_prefix + "fresh:"
        fresh = RedisProjector(redis_client, records_of(fresh_prefix), 180)
        events = [
            (n.id, writer.store.mapper.to_domain_event(n))
            for n in writer.store.recorder.select_notifications(start=None, limit=10_000)
        ]
        fresh.apply_batch(events)
        recovered = {
            k.removeprefix(crash_prefix): v for k, v in snapshot(redis_client, crash_prefix).items()
        }
        rebuilt = {
            k.removeprefix(fresh_prefix): v for k, v in snapshot(redis_client, fresh_prefix).items()
        }
        assert recovered == rebuilt
        assert int(redis_client.get(crash_prefix + "pos") or 0) == total
    finally:
        writer.close()


def migrate(production: dict[str, str]) -> None:
    """What `make run-prod` and docker-compose do before the workers start."""
    env = {**os.environ, **{f"FANGXIN_{k.upper()}": v for k, v in production.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "interface.cli", "migrate"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "schema ready (PostgreSQL)" in done.stdout


@pytest.fixture(params=["open", "password"])
def deployed(request: pytest.FixtureRequest, production: dict[str, str]) -> dict[str, str]:
    """The production settings on the machine's Redis, and on one that requires a password."""
    if request.param == "open":
        return production
    url: str = request.getfixturevalue("password_redis_url")
    without_password = redis.Redis.from_url(re.sub(r"//:[^@]*@", "//", url))
    with pytest.raises(redis.AuthenticationError):
        without_password.ping()
    without_password.close()
    # A single Redis of its own (a cluster with a password: `FANGXIN_CLUSTER_PASSWORD`).
    return {**production, "redis_url": url, "redis_cluster": "0"}


def test_two_workers_serve_a_check_in_on_one_and_the_history_on_the_other(
    deployed: dict[str, str],
) -> None:
    env = {f"FANGXIN_{k.upper()}": v for k, v in deployed.items() if k != "data_dir"}
    data = Path(deployed["data_dir"])
    migrate(deployed)
    with (
        running_server(data, **env) as first,
        running_server(data, **env) as second,
        httpx.Client(base_url=first.base_url, timeout=10) as a,
        httpx.Client(base_url=second.base_url, timeout=10) as b,
    ):
        merchant = a.post("/v1/merchants", json={"name": "M", "contact_phone": "+8613900000000"})
        venue = a.post(
            "/v1/venues",
            json={"name": "老王面馆", "address": "1 Rd", "region": "110105", "category": "f"},
            headers={"Authorization": f"Bearer {merchant.json()['token']}"},
        ).json()
        visitor = a.post("/v1/visitors", json={"name": "V", "phone": "+8613900000001"}).json()
        auth = {"Authorization": f"Bearer {visitor['token']}"}
        seen = []
        for _ in range(5):
            checked_in = a.post("/v1/check-ins", json={"code": venue["code"]}, headers=auth)
            assert checked_in.status_code == 201
            history = b.get("/v1/me/visits", headers=auth).json()["visits"]
            assert history[-1]["visit_id"] == checked_in.json()["visit_id"]
            seen.append(history[-1]["visit_id"])
            out = b.post("/v1/check-outs", json={"code": venue["checkout_code"]}, headers=auth)
            assert out.status_code == 200
            final = a.get("/v1/me/visits", headers=auth).json()["visits"]
            assert final[-1]["checkout_reason"] == "payment"
        assert len(set(seen)) == 5
        health = a.get("/health").json()
        assert health["redis"] == "ok"
        assert health["projection_lag"] == 0


def test_fangxin_serve_with_two_workers_answers_from_both_and_stops_cleanly(
    production: dict[str, str],
) -> None:
    env = {f"FANGXIN_{k.upper()}": v for k, v in production.items() if k != "data_dir"}
    migrate(production)
    with running_server(Path(production["data_dir"]), FANGXIN_WORKERS="2", **env) as server:
        pids: set[str] = set()
        for _ in range(200):  # both workers may take a moment to start
            # A new connection each time: the kernel spreads them over the workers' sockets.
            metrics = httpx.get(
                f"{server.base_url}/metrics",
                headers={"Authorization": f"Bearer {production['admin_token']}"},
                timeout=10,
            )
            assert metrics.status_code == 200
            pids |= set(
                re.findall(r'fangxin_group_commit_batches_total\{pid="(\d+)"', metrics.text)
            )
            if len(pids) == 2:
                break
        assert len(pids) == 2, server.log_path.read_text()
    # running_server has stopped it with SIGINT and checked that it exited with 0.


def test_an_erasure_in_one_worker_shreds_the_key_cached_by_another(
    production: dict[str, str],
) -> None:
    import time

    from domain.people import Visitor

    settings = load_settings({}, **production)
    first, second = build_services(settings), build_services(settings)
    try:
        second.start()
        made = first.app.register_visitor("王秀英", "+8613912345678", [], None)
        cached: Visitor = second.store.repository.get(made.id)
        assert cached.name == "王秀英"  # the second worker now holds the key in memory
        first.app.erase_visitor(made.id)
        deadline = time.monotonic() + 5
        while True:
            again: Visitor = second.store.repository.get(made.id)
            if again.forgotten or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert again.forgotten
        assert not hasattr(again, "name") or again.name != "王秀英"
    finally:
        second.close()
        first.close()


def test_an_exposure_declared_on_one_worker_reaches_a_visitor_connected_to_another(
    production: dict[str, str],
) -> None:
    import json
    import queue
    import threading
    from datetime import UTC, datetime, timedelta

    from tests.http.test_live_server import listen

    env = {f"FANGXIN_{k.upper()}": v for k, v in production.items() if k != "data_dir"}
    admin = {"Authorization": f"Bearer {production['admin_token']}"}
    migrate(production)
    with (
        running_server(Path(production["data_dir"]), **env) as first,
        running_server(Path(production["data_dir"]), **env) as second,
        httpx.Client(base_url=first.base_url, timeout=10) as a,
    ):
        agency = a.post(
            "/v1/agencies", json={"name": "A", "jurisdiction": ["110000"]}, headers=admin
        )
        officers = f"/v1/agencies/{agency.json()['agency_id']}/officers"
        tracer = a.post(officers, json={"name": "T", "role": "tracer"}, headers=admin).json()
        chief = a.post(officers, json={"name": "S", "role": "supervisor"}, headers=admin).json()
        merchant = a.post("/v1/merchants", json={"name": "M", "contact_phone": "+8613900000000"})
        venue = a.post(
            "/v1/venues",
            json={"name": "老王面馆", "address": "1 Rd", "region": "110105", "category": "f"},
            headers={"Authorization": f"Bearer {merchant.json()['token']}"},
        ).json()
        people = [
            a.post("/v1/visitors", json={"name": n, "phone": f"+861390000000{i}"}).json()
            for i, n in enumerate(["I", "E"])
        ]
        visits = [
            a.post(
                "/v1/check-ins",
                json={"code": venue["code"]},
                headers={"Authorization": f"Bearer {person['token']}"},
            ).json()
            for person in people
        ]
        events: queue.Queue[tuple[str, str]] = queue.Queue()
        listener = threading.Thread(target=listen, args=(second, people[1]["token"], events))
        listener.start()
        assert events.get(timeout=10) == ("connected", "")
        now = datetime.now(UTC)
        case = a.post(
            "/v1/cases",
            json={
                "index": {"phone": "+8613900000000"},
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": now.isoformat(),
                "legal_basis": "lab confirmed",
            },
            headers={"Authorization": f"Bearer {tracer['token']}"},
        ).json()
        a.post(
            f"/v1/cases/{case['case_id']}/approval",
            json={"approve": True},
            headers={"Authorization": f"Bearer {chief['token']}"},
        )
        declared = a.post(
            "/v1/exposures",
            json={
                "case_id": case["case_id"],
                "venue_id": venue["venue_id"],
                "from": visits[0]["checked_in_at"],
                "to": (now + timedelta(minutes=5)).isoformat(),
                "advice": "请居家观察",
            },
            headers={"Authorization": f"Bearer {tracer['token']}"},
        )
        assert declared.status_code == 201, declared.text
        kind, data = events.get(timeout=10)
        listener.join(timeout=10)
        assert kind == "exposure"
        assert json.loads(data)["venue"]["name"] == "老王面馆"
        assert json.loads(data)["advice"] == "请居家观察"


def test_an_unreachable_redis_answers_503_with_retry_after_never_500(
    production: dict[str, str],
) -> None:
    from litestar.testing import TestClient

    from interface.http.app import create_app

    # A cluster client needs a reachable node to start; a single Redis may be down at start.
    unreachable = {"redis_url": "redis://127.0.0.1:1/0", "redis_cluster": "0"}
    settings = load_settings({}, **{**production, **unreachable})
    services = build_services(settings)
    try:
        with TestClient(create_app(settings, services=services)) as client:
            answer = client.get("/v1/me/visits", headers={"Authorization": "Bearer " + "x" * 43})
            assert answer.status_code == 503
            assert answer.headers["retry-after"] == "1"
            assert answer.headers["content-type"].startswith("application/problem+json")
            health = client.get("/health")
            assert health.status_code == 503
            assert health.json()["redis"] == "unavailable"
    finally:
        services.close()


def test_a_writer_steps_over_ids_a_rolled_back_transaction_left_without_the_runner(
    production: dict[str, str],
) -> None:
    settings = load_settings({}, **production)
    services = build_services(settings)  # not started: no runner follows the log
    client = services.redis
    assert client is not None
    try:
        app = services.app
        merchant = app.register_merchant("M", "+8613900000000", None)
        venue = app.register_venue(merchant.id, "V", "Rd", "110105", "c", None, 60, None)
        code = app.codes_of(app.owned_venue(merchant.id, venue)).code
        visitor = app.register_visitor("P", "+8613800000000", [], None)
        before = services.runner.position
        # A transaction that rolls back (two events at one version of one new merchant)
        # leaves the notification ids it took unused: a gap.
        store = services.store
        (registered,) = store.events.get(merchant.id)
        unsaved = dataclasses.replace(registered, originator_id=uuid.uuid4())
        with pytest.raises(IntegrityError):
            store.record(*store.mapped([unsaved, unsaved]))
        visit = check_in(services, visitor.id, code)
        assert services.visits.get(visit.visit_id) is not None  # read-your-writes
        assert services.runner.position > before + 1  # stepped over the gap
        assert client.llen(settings.redis_prefix + "doorbell") == 0  # never rang the runner
        assert client.get(settings.redis_prefix + "runner-lock") is None  # nor became it
    finally:
        services.close()
