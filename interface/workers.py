"""Several uvicorn workers, each accepting on a listening socket of its own.

uvicorn's supervisor hands every worker the same listening socket, and whichever worker is
awake takes the next connection: under a burst of new connections one worker can take most
of them (a benchmark run saw four times as many check-ins on one worker as on the other),
and then it is saturated while the other idles. Here each worker slot has its own socket on
the same port (`SO_REUSEPORT`), and the kernel spreads new connections over them. The
supervisor keeps the sockets, so connections that reach a slot while its worker is replaced
wait in that socket's queue for the next one. Starting, health checks and signals are
uvicorn's (`Multiprocess`); only which socket each worker gets is decided here.
"""

from __future__ import annotations

import logging
import socket

from uvicorn.config import STARTUP_FAILURE, Config
from uvicorn.supervisors.multiprocess import Multiprocess, Process

log = logging.getLogger("fangxin.workers")


def listening_sockets(host: str, port: int, count: int) -> list[socket.socket]:
    """`count` sockets bound to one address with SO_REUSEPORT (port 0: one free port)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sockets: list[socket.socket] = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((host, port))
        port = sock.getsockname()[1]
        sock.set_inheritable(True)
        sockets.append(sock)
    return sockets


class SpreadWorkers(Multiprocess):
    """uvicorn's worker supervisor, with socket `i` for the worker of slot `i`."""

    def __init__(self, config: Config, sockets: list[socket.socket]) -> None:
        if len(sockets) != config.workers:
            raise ValueError("one socket per worker")
        super().__init__(config, sockets)

    def _start(self, slot: int) -> Process:
        process = Process(self.config, [self.sockets[slot]])
        process.start()
        return process

    def init_processes(self) -> None:
        """Start one worker per slot."""
        self.processes = [self._start(slot) for slot in range(self.processes_num)]

    def restart_all(self) -> None:
        """Replace each worker in turn (SIGHUP), keeping its slot's socket."""
        for slot, old in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            new = self._start(slot)
            if not new.wait_until_ready(self.config.timeout_worker_healthcheck, self.should_exit):
                new.kill()
                new.join()
                return
            old.terminate()
            old.join()
            self.processes[slot] = new

    def keep_subprocess_alive(self) -> None:
        """Replace a worker that died or stopped answering, on its slot's socket."""
        for slot, process in enumerate(self.processes):
            if self.should_exit.is_set():
                return
            if process.is_alive(timeout=self.config.timeout_worker_healthcheck):
                continue
            process.kill()
            process.join()
            if process.exitcode == STARTUP_FAILURE:  # it would fail the same way again
                log.error("a worker failed to start; stopping", extra={"pid": process.pid})
                self.should_exit.set()
                return
            log.warning("a worker died; starting another", extra={"pid": process.pid})
            self.processes[slot] = self._start(slot)
