"""A real `fangxin serve` process for end-to-end tests over HTTP."""

from __future__ import annotations

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
import pytest

REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Server:
    """A running app and where it listens."""

    base_url: str
    log_path: Path

    def client(self, token: str | None = None) -> httpx.Client:
        """A client for the API, authenticated when given a token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.base_url, headers=headers, timeout=10)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_healthy(process: subprocess.Popen[bytes], server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    with server.client() as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                pytest.fail(f"the server exited early:\n{server.log_path.read_text()}")
            try:
                if client.get("/health").status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
    pytest.fail(f"the server did not become healthy:\n{server.log_path.read_text()}")


def stop(process: subprocess.Popen[bytes], server: Server) -> None:
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
        pytest.fail(f"the server did not stop on SIGINT:\n{server.log_path.read_text()}")
    assert process.returncode == 0, server.log_path.read_text()


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
    """`fangxin serve` on a free port with its own data folder; stopped by SIGINT at the end."""
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
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "interface.cli", "serve"],
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running = Server(base_url=base_url, log_path=log_path)
        try:
            wait_until_healthy(process, running)
            yield running
        finally:
            stop(process, running)


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
