"""All configuration, read once from FANGXIN_* environment variables into one frozen Struct."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import msgspec

PREFIX = "FANGXIN_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """The service's configuration; every field is `FANGXIN_<FIELD>` in the environment."""

    data_dir: str = "./data"
    host: str = "127.0.0.1"
    port: int = 8000
    public_base_url: str = ""
    admin_token: str = ""
    master_key: str = ""
    database_url: str = ""
    database_schema: str = ""
    redis_url: str = ""
    redis_prefix: str = "fx:"
    # `FANGXIN_REDIS_URL` names one node of a Redis Cluster (ADR 0012).
    redis_cluster: bool = False
    retention_days: int = 28
    # An approved case is readable this long, then expires (officers may close it earlier).
    case_lifetime_days: int = 14
    workers: int = 1
    default_max_dwell_minutes: int = 180
    max_body_bytes: int = 16 * 1024
    auto_checkout_interval_seconds: float = 30.0
    rate_limit: int = 0
    group_commit_max: int = 200
    threads: int = 128
    # Unset: 0.5 ms on the embedded store, 2 ms on PostgreSQL (`group_commit_wait`).
    group_commit_wait_ms: float | None = None
    log_level: str = "info"
    trusted_proxies: str = ""
    log_format: str = "json"
    # Lets a scraper read /metrics besides the admin's token (empty: the admin's only).
    metrics_token: str = ""
    # /health answers 503 once the read models have stayed more than this many events behind
    # the log for this long. Healthy lag is a few group commits (a few hundred events), applied
    # within milliseconds; the runner applies about 20,000 events/s, so 10,000 is half a
    # second of work, and 30 s outlasts a runner handover (the lock lives 5 s) or a restart.
    projection_max_lag: int = 10_000
    projection_lag_grace_seconds: float = 30.0
    # Production: who catches the history up (ADR 0014). `serve` starts one `fangxin follow`
    # process beside its workers; `external`: the operator runs it (one per deployment).
    history_follower: Literal["serve", "external"] = "serve"
    # `fangxin follow` lowers its own CPU priority by this much (os.nice): under load the
    # check-ins come first, and the history catches up in the cores' spare time.
    history_nice: int = 10
    # /health answers 503 once the history has stayed behind the log this long without moving
    # (its follower is gone or failing). A follower catches up every 0.2 s, and a restart
    # takes a second or two.
    history_stalled_seconds: float = 10.0

    @property
    def base_url(self) -> str:
        """The public base URL that venue codes point to, without a trailing slash."""
        if self.public_base_url:
            return self.public_base_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host  # noqa: S104
        return f"http://{host}:{self.port}"

    @property
    def data_path(self) -> Path:
        """The data folder of the embedded deployment."""
        return Path(self.data_dir)

    @property
    def pg_dsn(self) -> str:
        """The PostgreSQL connection string, with the schema on the search path when one is set."""
        if not self.database_schema:
            return self.database_url
        joiner = "&" if "?" in self.database_url else "?"
        return f"{self.database_url}{joiner}options=-csearch_path%3D{self.database_schema}"

    @property
    def group_commit_wait(self) -> float:
        """Seconds the first write of a group commit waits for company.

        Measured with `bench/compare.py` (the same machine): in one embedded process the
        request handling and the commit share one core, so a long wait only idles the writers
        (0.5 ms: about 30 % more check-ins/s at 16 connections than 2 ms, the same at 64). On
        PostgreSQL, where each transaction takes a table lock, larger batches pay.
        """
        if self.group_commit_wait_ms is not None:
            return self.group_commit_wait_ms / 1000
        return 0.002 if self.uses_postgres else 0.0005

    @property
    def uses_postgres(self) -> bool:
        """Whether the event store and key store live in PostgreSQL."""
        return self.database_url.startswith(("postgresql://", "postgres://"))

    @property
    def is_production(self) -> bool:
        """PostgreSQL and Redis: the deployment whose history follows in a process of its own."""
        return self.uses_postgres and bool(self.redis_url)


def load_settings(environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
    """Read FANGXIN_* variables (strings converted to the field types), then apply overrides."""
    env = os.environ if environ is None else environ
    raw: dict[str, object] = {
        key[len(PREFIX) :].lower(): value
        for key, value in env.items()
        if key.startswith(PREFIX) and key[len(PREFIX) :].lower() in Settings.__struct_fields__
    }
    raw.update(overrides)
    try:
        return msgspec.convert(raw, Settings, strict=False)
    except msgspec.ValidationError as exc:
        raise SystemExit(f"fangxin: bad configuration: {exc}") from None
