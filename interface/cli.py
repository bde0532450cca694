"""The `fangxin` command: serve, and admin chores (`fangxin keys ...`: keys_cli.py)."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys

from infrastructure.settings import load_settings
from interface.follower_process import FollowerProcess, follower_beside
from interface.keys_cli import add_commands as add_key_commands

PARENT_CHECK_SECONDS = 0.5


def serve(_: argparse.Namespace) -> int:
    """Start the HTTP service on the configured host and port."""
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from infrastructure.ops.regions import national_regions
    from interface.http.observability import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    # Fail before listening, with the reason, when the national list of regions is missing.
    national_regions()
    store = "PostgreSQL" if settings.uses_postgres else f"SQLite in {settings.data_path.resolve()}"
    print(
        f"fangxin: listening on http://{settings.host}:{settings.port}"
        f" (public URL {settings.base_url}; event store: {store})",
        flush=True,
    )
    config = uvicorn.Config(
        "interface.http.asgi:build",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        access_log=False,
        # The rate limiter reads X-Forwarded-For itself, and only from trusted proxies.
        proxy_headers=False,
        log_config=None,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
        # Each answer in one socket write (see interface/http/transport.py).
        http="interface.http.transport:HttpProtocol",
    )
    # Production's history follows in a process of its own beside the workers (ADR 0014).
    with follower_beside(settings) as follower:
        if settings.workers > 1:
            from interface.workers import SpreadWorkers, listening_sockets

            # A socket per worker, so that new connections are spread evenly over them.
            sockets = listening_sockets(settings.host, settings.port, settings.workers)
            SpreadWorkers(config, sockets).run()
            return 0
        server = uvicorn.Server(config)
        if follower is not None:
            # uvicorn stops gracefully on SIGTERM, then raises it again as a service manager
            # expects: the follower is stopped first, and then the process ends of the signal.
            signal.signal(signal.SIGTERM, lambda *_: _end_of_sigterm(follower))
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl+C: it stopped already
            server.run()
        return 0 if server.started else STARTUP_FAILURE


def _end_of_sigterm(follower: FollowerProcess) -> None:
    follower.stop()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.raise_signal(signal.SIGTERM)


def follow(args: argparse.Namespace) -> int:
    """Keep production's history caught up with the log, niced, until SIGTERM or SIGINT (or,
    started by `fangxin serve`, until that server is gone)."""
    import threading

    from infrastructure.follow import build_following
    from interface.http.observability import configure_logging

    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    if not settings.is_production:
        print(
            "fangxin: `follow` is for the production deployment (FANGXIN_DATABASE_URL and"
            " FANGXIN_REDIS_URL); the embedded one follows in its own process",
            file=sys.stderr,
        )
        return 2
    os.nice(settings.history_nice)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    # Beside a server, a Ctrl+C for the server's terminal is the server's to act on.
    signal.signal(signal.SIGINT, signal.SIG_IGN if args.parent else lambda *_: stop.set())
    following = build_following(settings)
    following.follower.start()
    print(f"fangxin: following the history (pid {os.getpid()})", flush=True)
    try:
        while not stop.wait(PARENT_CHECK_SECONDS):
            if args.parent and os.getppid() != args.parent:
                break  # the server that started this one is gone
    finally:
        following.close()
    return 0


def admin_token(_: argparse.Namespace) -> int:
    """Make a new admin token (the previous one stops working), audited, and print it once."""
    from infrastructure.bootstrap import build_services

    settings = load_settings()
    if settings.admin_token:
        print("fangxin: FANGXIN_ADMIN_TOKEN is set; change it there instead", file=sys.stderr)
        return 2
    services = build_services(settings, replay=False)
    try:
        print(services.admin.issue())
    finally:
        services.close()
    return 0


def migrate(_: argparse.Namespace) -> int:
    """Create the schema (event store, keys, audit) once, before the workers start."""
    from infrastructure.bootstrap import build_services

    settings = load_settings()
    services = build_services(settings, replay=False)
    try:
        token = services.admin.first_start()
        if token:
            print(f"fangxin: admin token (shown once): {token}", flush=True)
        store = "PostgreSQL" if settings.uses_postgres else f"SQLite in {settings.data_path}"
        print(f"fangxin: schema ready ({store})", flush=True)
    finally:
        services.close()
    return 0


def rebuild(_: argparse.Namespace) -> int:
    """Drop every read model (and the history) and replay the log into it, with a progress bar
    and events/s."""
    import time

    from infrastructure.bootstrap import build_services

    settings = load_settings()
    services = build_services(settings, replay=False)
    started = time.perf_counter()

    def progress(done: int, total: int) -> None:
        share = done / total if total else 1.0
        bar = "#" * int(share * 30)
        rate = done / max(time.perf_counter() - started, 1e-9)
        print(
            f"\rrebuild [{bar:<30}] {done:>9,}/{total:,} events {rate:>9,.0f}/s",
            end="",
            file=sys.stderr,
            flush=True,
        )

    try:
        done = services.runner.rebuild(progress)
        print(file=sys.stderr)
        _rebuilt("", done, time.perf_counter() - started)
        if services.history is not None:
            # The history too: its tables and position go, and it applies the log again.
            started = time.perf_counter()
            done = services.history.rebuild()
            _rebuilt("the history from ", done, time.perf_counter() - started)
    finally:
        services.close()
    return 0


def _rebuilt(what: str, done: int, elapsed: float) -> None:
    rate = done / max(elapsed, 1e-9)
    print(f"fangxin: rebuilt {what}{done:,} events in {elapsed:.1f} s: {rate:,.0f} events/s")


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    parser = argparse.ArgumentParser(prog="fangxin", description="Venue check-in and tracing.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start the HTTP service").set_defaults(func=serve)
    commands.add_parser("migrate", help="create the schema once").set_defaults(func=migrate)
    commands.add_parser("rebuild", help="rebuild every read model").set_defaults(func=rebuild)
    following = commands.add_parser("follow", help="keep the history caught up (production)")
    following.add_argument(
        "--parent", type=int, default=0, help="stop when this process is gone (`serve` sets it)"
    )
    following.set_defaults(func=follow)
    admin = commands.add_parser("admin", help="platform admin chores")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    admin_commands.add_parser("token", help="make a new admin token").set_defaults(func=admin_token)
    add_key_commands(commands)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
