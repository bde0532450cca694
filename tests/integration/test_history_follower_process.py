"""Production's history is followed by ONE process of its own beside the HTTP workers (ADR
0014): `fangxin serve` starts it niced, starts another when it dies, and the workers run no
follower of their own; their /health tells a stalled history from one that moves."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.live import REPO, Server, fangxin_env, migrate, running_server
from tests.resilience.processes import followers

WAIT_SECONDS = 30
T = TypeVar("T")


def wait_for(what: Callable[[], T | None], timeout: float = WAIT_SECONDS) -> T:
    """Poll until `what()` answers something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = what()
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"not within {timeout} s: {what.__doc__}")


def one_follower(server: Server) -> int:
    """The server's one follower process (waiting for it to be started)."""

    def started() -> list[int]:
        """a follower process of the server"""
        return followers(server.pid)

    found = wait_for(started)
    assert len(found) == 1, found
    return found[0]


def niced(pid: int) -> Callable[[], bool]:
    def check() -> bool:
        """the process niced to 10 (it lowers its own priority as it starts)"""
        return os.getpriority(os.PRIO_PROCESS, pid) == 10

    return check


def env_of(production: dict[str, str], **more: str) -> dict[str, str]:
    settings = {**production, **more}
    return {f"FANGXIN_{k.upper()}": v for k, v in settings.items() if k != "data_dir"}


def history_of(client: httpx.Client) -> dict[str, object]:
    answer = client.get("/health")
    return {"code": answer.status_code, **answer.json()}


def caught_up(client: httpx.Client) -> Callable[[], dict[str, object] | None]:
    def check() -> dict[str, object] | None:
        """the history caught up, healthy"""
        health = history_of(client)
        return health if health["history_lag"] == 0 and health["code"] == 200 else None

    return check


def stalled(client: httpx.Client) -> Callable[[], dict[str, object] | None]:
    checked_in = iter(range(100, 10_000))

    def check() -> dict[str, object] | None:
        """/health reporting the history stalled while the log moves"""
        health = history_of(client)
        if health["history_lag"] == 0:
            # A worker's read (its duties at start, say) caught the history up itself: write
            # more, so that only a follower could keep up.
            check_in_someone(client, next(checked_in))
        return health if health["code"] == 503 else None

    return check


def check_in_someone(client: httpx.Client, n: int) -> None:
    """A new merchant, venue and visitor, and a check-in: a few events in the log (no read of
    the history)."""
    merchant = client.post(
        "/v1/merchants", json={"name": "M", "contact_phone": f"+861390000{n:04d}"}
    )
    venue = client.post(
        "/v1/venues",
        json={"name": "Shop", "address": "1 Rd", "region": "110105", "category": "f"},
        headers={"Authorization": f"Bearer {merchant.json()['token']}"},
    ).json()
    visitor = client.post("/v1/visitors", json={"name": "V", "phone": f"+861380000{n:04d}"})
    checked_in = client.post(
        "/v1/check-ins",
        json={"code": venue["code"]},
        headers={"Authorization": f"Bearer {visitor.json()['token']}"},
    )
    assert checked_in.status_code == 201


@contextmanager
def served(production: dict[str, str], **more: str) -> Iterator[tuple[Server, httpx.Client]]:
    data = Path(production["data_dir"])
    env = env_of(production, **more)
    migrate(data, **env)
    with running_server(data, **env) as server, server.client() as client:
        yield server, client


@pytest.mark.parametrize("workers", ["1", "2"])
def test_serve_runs_one_niced_follower_process_and_no_worker_follows(
    production: dict[str, str], workers: str
) -> None:
    with served(production, workers=workers, history_stalled_seconds="1") as (server, client):
        follower = one_follower(server)
        wait_for(niced(follower))

        check_in_someone(client, 1)
        wait_for(caught_up(client))  # /health reads the position; it catches nothing up

        # With the follower paused, nothing else catches the history up (no worker's thread),
        # and /health says so once it stays behind without moving.
        os.kill(follower, signal.SIGSTOP)
        try:
            health: Any = wait_for(stalled(client))
            assert health["history"]["state"] == "stalled"
            assert health["history_lag"] > 0
            assert "the projection history is stalled" in health["detail"]
        finally:
            os.kill(follower, signal.SIGCONT)
        wait_for(caught_up(client))
        assert followers(server.pid) == [follower]


def test_a_killed_follower_is_replaced_and_the_history_catches_up_again(
    production: dict[str, str],
) -> None:
    with served(production, workers="2") as (server, client):
        first = one_follower(server)
        os.kill(first, signal.SIGKILL)

        def replaced() -> list[int]:
            """another follower process"""
            return [pid for pid in followers(server.pid) if pid != first]

        second = wait_for(replaced)
        assert followers(server.pid) == second
        check_in_someone(client, 1)
        wait_for(caught_up(client))


def test_an_external_follower_keeps_the_history_of_a_server_that_starts_none(
    production: dict[str, str], tmp_path: Path
) -> None:
    settings = {"history_follower": "external", "history_stalled_seconds": "1"}
    with served(production, **settings) as (server, client):
        assert followers(server.pid) == []
        history: Any = wait_for(stalled(client))["history"]
        assert history["state"] == "stalled"
        assert history["behind_since"]
        # What an operator runs on a machine of their choice.
        env = fangxin_env(Path(production["data_dir"]), **env_of(production))
        with (tmp_path / "follow.log").open("wb") as log:
            follow = subprocess.Popen(
                [sys.executable, "-m", "interface.cli", "follow"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            wait_for(caught_up(client))
            wait_for(niced(follow.pid))
        finally:
            follow.send_signal(signal.SIGTERM)
            assert follow.wait(timeout=20) == 0, (tmp_path / "follow.log").read_text()
