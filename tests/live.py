"""Real server processes over HTTP: the one launcher that the tests and the benchmarks share.

`launched` starts any command in a session of its own, waits for its /health and stops it (the
whole process group, so no worker outlives it); `running_server` and `deployed_server` are
`fangxin serve` on a data folder of its own. Nothing here needs pytest: bench/ imports it too.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 30
STOP_TIMEOUT_SECONDS = 20
SERVE = [sys.executable, "-m", "interface.cli", "serve"]


class ServerFailedError(RuntimeError):
    """The server did not start, did not stop, or stopped with an error; its log says why."""


@dataclass(frozen=True)
class Server:
    """A running server, where it listens and where it logs."""

    base_url: str
    log_path: Path
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        """The launched process: the supervisor when there are workers, which are its children."""
        return self.process.pid

    def client(self, token: str | None = None) -> httpx.Client:
        """A client for the API, authenticated when given a token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(server: Server, timeout: float = START_TIMEOUT_SECONDS) -> None:
    """Poll /health until it answers 200; fail at once if the process exits first."""
    deadline = time.monotonic() + timeout
    with httpx.Client(base_url=server.base_url, timeout=2) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise ServerFailedError(f"the server exited early:\n{server.log()}")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    raise ServerFailedError(f"the server did not become healthy:\n{server.log()}")


def stop(server: Server, how: signal.Signals = signal.SIGINT) -> int:
    """Signal the server (unless it has exited already) and wait; then kill whatever is left of
    its process group. Its exit code; a server that would not stop is an error."""
    process = server.process
    if process.poll() is None:
        process.send_signal(how)
    try:
        process.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        raise ServerFailedError(f"the server did not stop on {how.name}:\n{server.log()}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    return process.returncode


@contextmanager
def launched(
    command: list[str],
    port: int,
    env: dict[str, str],
    log_path: Path,
    *,
    cwd: Path = REPO,
    start_timeout: float = START_TIMEOUT_SECONDS,
    stop_signal: signal.Signals = signal.SIGINT,
    clean_exit: bool = True,
) -> Iterator[Server]:
    """`command`, listening on `port` of 127.0.0.1, once its /health answers 200; stopped by
    `stop_signal` at the end, and with `clean_exit` it must then exit with 0."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(f"http://127.0.0.1:{port}", log_path, process)
    try:
        wait_until_healthy(server, start_timeout)
        yield server
    except BaseException:
        stop(server, stop_signal)
        raise
    code = stop(server, stop_signal)
    if clean_exit and code != 0:
        raise ServerFailedError(f"the server exited with {code}:\n{server.log()}")


def fangxin_env(data_dir: Path, **env_overrides: str) -> dict[str, str]:
    """This process's environment without its FANGXIN_ settings, with the data folder and
    `env_overrides` instead."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FANGXIN_")}
    env.update(FANGXIN_DATA_DIR=str(data_dir), FANGXIN_LOG_LEVEL="warning", **env_overrides)
    return env


def migrate(data_dir: Path, **env_overrides: str) -> None:
    """`fangxin migrate` (PostgreSQL workers never create their tables themselves)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-m", "interface.cli", "migrate"],
        cwd=REPO,
        env=fangxin_env(data_dir, **env_overrides),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        check=True,
        timeout=START_TIMEOUT_SECONDS,
    )


@contextmanager
def running_server(data_dir: Path, **env_overrides: str) -> Iterator[Server]:
    """`fangxin serve` on a free port with its own data folder; stopped by SIGINT at the end,
    after which it must exit with 0."""
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = fangxin_env(
        data_dir,
        **{
            "FANGXIN_HOST": "127.0.0.1",
            "FANGXIN_PORT": str(port),
            "FANGXIN_PUBLIC_BASE_URL": base_url,
            **env_overrides,
        },
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir.parent / f"{data_dir.name}-server.log"
    with launched(SERVE, port, env, log_path) as server:
        yield server


@contextmanager
def deployed_server(data_dir: Path, **env_overrides: str) -> Iterator[Server]:
    """`running_server` on this run's deployment: embedded, or (with
    FANGXIN_TEST_DEPLOYMENT=production) its own PostgreSQL schema and Redis prefix, migrated."""
    from tests.conftest import placed_deployment

    with placed_deployment() as placed:
        env = {f"FANGXIN_{name.upper()}": value for name, value in placed.items()}
        env.update(env_overrides)
        if placed:
            migrate(data_dir, **env)
        with running_server(data_dir, **env) as running:
            yield running
