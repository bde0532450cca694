"""Workers with a listening socket each: new connections spread over them, and a worker's
replacement takes over its socket."""

from __future__ import annotations

import signal
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from uvicorn.config import Config

from interface import workers
from interface.workers import SpreadWorkers, listening_sockets


def test_sockets_of_one_port_each_take_a_share_of_new_connections() -> None:
    sockets = listening_sockets("127.0.0.1", 0, 2)
    port = sockets[0].getsockname()[1]
    assert sockets[1].getsockname()[1] == port
    clients: list[socket.socket] = []
    try:
        for sock in sockets:
            sock.listen(64)
            sock.setblocking(False)
        clients = [socket.create_connection(("127.0.0.1", port)) for _ in range(40)]
        accepted = [0, 0]
        for _ in range(200):
            for i, sock in enumerate(sockets):
                try:
                    conn, _ = sock.accept()
                except BlockingIOError:
                    continue
                conn.close()
                accepted[i] += 1
            if sum(accepted) == len(clients):
                break
        assert sum(accepted) == 40
        # Spread by the kernel (a hash of each connection): all 40 on one socket would be
        # a one in 2^39 chance.
        assert min(accepted) > 0
    finally:
        for client in clients:
            client.close()
        for sock in sockets:
            sock.close()


@pytest.fixture
def own_signals() -> Iterator[None]:
    """uvicorn's supervisor takes over the process's signals: give them back afterwards."""
    names = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGTTIN", "SIGTTOU", "SIGUSR1", "SIGUSR2")
    kept = {sig: signal.getsignal(sig) for sig in (getattr(signal, n) for n in names)}
    kept[signal.SIGWINCH] = signal.getsignal(signal.SIGWINCH)
    yield
    for sig, handler in kept.items():
        signal.signal(sig, handler)


class FakeProcess:
    """Stands for a uvicorn worker process: records its sockets; alive until told."""

    started: list[FakeProcess] = []

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        self.sockets = sockets
        self.alive = True
        self.pid = len(FakeProcess.started) + 100
        self.exitcode: int | None = None

    def start(self) -> None:
        FakeProcess.started.append(self)

    def is_alive(self, timeout: float = 5) -> bool:
        return self.alive

    def kill(self) -> None:
        self.alive = False
        self.exitcode = -9

    def join(self) -> None:
        pass

    def wait_until_ready(self, timeout: float, should_exit: Any = None) -> bool:
        return self.alive

    def terminate(self) -> None:
        self.alive = False


@pytest.fixture
def supervisor(monkeypatch: pytest.MonkeyPatch, own_signals: None) -> SpreadWorkers:
    """A supervisor of two faked workers on two (named) sockets, its workers started."""
    monkeypatch.setattr(workers, "Process", FakeProcess)
    FakeProcess.started = []
    sockets: list[Any] = ["socket-0", "socket-1"]
    started = SpreadWorkers(Config("interface.http.asgi:build", workers=2), sockets)
    started.init_processes()
    return started


def test_each_worker_slot_keeps_its_own_socket_across_a_replacement(
    supervisor: SpreadWorkers, caplog: pytest.LogCaptureFixture
) -> None:
    assert [p.sockets for p in FakeProcess.started] == [["socket-0"], ["socket-1"]]
    FakeProcess.started[1].alive = False  # the second worker dies
    supervisor.keep_subprocess_alive()
    assert len(FakeProcess.started) == 3
    assert FakeProcess.started[2].sockets == ["socket-1"]  # its replacement, on its socket
    assert supervisor.processes == [FakeProcess.started[0], FakeProcess.started[2]]
    assert "a worker died" in caplog.text


def test_a_supervisor_needs_one_socket_per_worker(own_signals: None) -> None:
    with pytest.raises(ValueError, match="one socket per worker"):
        SpreadWorkers(Config("interface.http.asgi:build", workers=2), [])


def test_a_restart_replaces_each_worker_on_its_own_socket(supervisor: SpreadWorkers) -> None:
    old = list(supervisor.processes)
    supervisor.restart_all()  # what SIGHUP asks for
    assert [p.sockets for p in supervisor.processes] == [["socket-0"], ["socket-1"]]
    assert all(p not in old for p in supervisor.processes)
    assert not any(p.alive for p in old)
