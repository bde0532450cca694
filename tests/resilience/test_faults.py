"""Check-ins under faults on the production deployment: a worker killed and Redis restarted in
the middle of a load. Whatever a client was answered 201 must hold afterwards: the visit is in
the log, the visitor's history lists it, and no key was given two visits."""

from __future__ import annotations

import os
import random
import signal
import time
from collections.abc import Collection
from datetime import UTC, datetime

import pytest

from tests.resilience.conftest import WORKERS, Deployment
from tests.resilience.load import Fault, Load, register
from tests.resilience.processes import workers
from tests.resilience.promises import Outcome, log_problems, outcome, wait_for_zero_lag

pytestmark = pytest.mark.resilience

VISITORS, VENUES, CLIENTS = 120, 12, 8
LOAD_SECONDS = 10.0
# A killed worker is replaced by its supervisor within this bound, or never.
REPLACED_WITHIN_SECONDS = 60


def wait_for_workers(deployment: Deployment, than: Collection[int] = ()) -> list[int]:
    """The supervisor's workers once it has all of them, none of them in `than`."""
    deadline = time.monotonic() + REPLACED_WITHIN_SECONDS
    while time.monotonic() < deadline:
        now = [pid for pid in workers(deployment.server.pid) if pid not in than]
        if len(now) == WORKERS:
            return now
        time.sleep(0.1)
    return workers(deployment.server.pid)


def loaded(deployment: Deployment, faults: list[Fault]) -> tuple[Load, Outcome]:
    """Register, run the load with these faults, let the projections catch up, and check."""
    base_url = deployment.server.base_url
    registered = register(base_url, VISITORS, VENUES)
    since = datetime.now(UTC)
    load = Load(base_url, registered, CLIENTS, LOAD_SECONDS)
    load.run(faults)
    health = wait_for_zero_lag(base_url)
    assert health.get("http_status") == 200, f"{health}\n{log_problems(deployment.server.log_path)}"
    assert health.get("projection_lag") == 0, health
    assert load.missed == [], "a fault was not injected, so the run proves less"
    result = outcome(
        load.records, registered, base_url, deployment.database_url, deployment.schema, since
    )
    return load, result


def assert_promises_held(deployment: Deployment, result: Outcome) -> None:
    why = f"{result.summary()}\nserver log:\n{log_problems(deployment.server.log_path)}"
    assert result.answered, why
    assert result.not_in_log == [], why
    assert result.not_listed == [], why
    assert result.two_visit_ids == [], why
    assert result.listing_failures == {}, why


def test_without_faults_every_check_in_is_answered_201_once_and_kept(
    deployment: Deployment,
) -> None:
    _, result = loaded(deployment, [])
    assert_promises_held(deployment, result)
    assert len(result.answered) == len(result.records), result.summary()
    assert result.server_errors == 0, result.summary()
    assert result.unanswered_in_log == 0, result.summary()


def test_every_201_holds_when_a_worker_is_killed_mid_load(deployment: Deployment) -> None:
    before = wait_for_workers(deployment)
    assert len(before) == WORKERS, log_problems(deployment.server.log_path)
    victim = random.Random(1).choice(before)

    def kill_a_worker() -> None:
        os.kill(victim, signal.SIGKILL)

    load, result = loaded(deployment, [Fault(3.0, "SIGKILL a worker", kill_a_worker)])
    assert load.injected == ["SIGKILL a worker"]
    assert_promises_held(deployment, result)
    replaced = wait_for_workers(deployment, than={victim})
    assert len(replaced) == WORKERS, f"the killed worker {victim} was not replaced: {replaced}"


def test_every_201_holds_when_redis_restarts_empty_mid_load(deployment: Deployment) -> None:
    load, result = loaded(deployment, [Fault(3.0, "restart Redis", deployment.redis.restart)])
    assert load.injected == ["restart Redis"]
    assert_promises_held(deployment, result)


def test_every_201_holds_through_a_killed_worker_and_a_redis_restart(
    deployment: Deployment,
) -> None:
    victim = random.Random(2).choice(wait_for_workers(deployment))
    faults = [
        Fault(2.0, "SIGKILL a worker", lambda: os.kill(victim, signal.SIGKILL)),
        Fault(5.0, "restart Redis", deployment.redis.restart),
    ]
    load, result = loaded(deployment, faults)
    assert load.injected == ["SIGKILL a worker", "restart Redis"]
    assert_promises_held(deployment, result)
    assert len(wait_for_workers(deployment, than={victim})) == WORKERS
