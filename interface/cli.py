"""The `fangxin` command: serve, and admin chores."""

from __future__ import annotations

import argparse
import logging
import sys

from infrastructure.settings import load_settings


def serve(_: argparse.Namespace) -> int:
    """Start the HTTP service on the configured host and port."""
    import uvicorn

    settings = load_settings()
    store = "PostgreSQL" if settings.uses_postgres else f"SQLite in {settings.data_path.resolve()}"
    print(
        f"fangxin: listening on http://{settings.host}:{settings.port}"
        f" (public URL {settings.base_url}; event store: {store})",
        flush=True,
    )
    uvicorn.run(
        "interface.http.asgi:build",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers if settings.workers > 1 else None,
        access_log=False,
        log_level=settings.log_level,
        timeout_graceful_shutdown=10,
    )
    return 0


def admin_token(_: argparse.Namespace) -> int:
    """Make a new admin token (the previous one stops working) and print it once."""
    from infrastructure.container import open_key_backend

    settings = load_settings()
    if settings.admin_token:
        print("fangxin: FANGXIN_ADMIN_TOKEN is set; change it there instead", file=sys.stderr)
        return 2
    backend = open_key_backend(settings)
    try:
        from infrastructure.admin import AdminTokens

        print(AdminTokens(backend, "").issue())
    finally:
        backend.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(prog="fangxin", description="Venue check-in and tracing.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="start the HTTP service").set_defaults(func=serve)
    admin = commands.add_parser("admin", help="platform admin chores")
    admin_commands = admin.add_subparsers(dest="admin_command", required=True)
    admin_commands.add_parser("token", help="make a new admin token").set_defaults(func=admin_token)
    args = parser.parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
