"""Contract suites run one set of assertions against every adapter of a port; the production
adapters use the local PostgreSQL and Redis, isolated by schema and key prefix."""

from __future__ import annotations

from tests.integration.conftest import pg_schema, redis_client, redis_prefix

__all__ = ["pg_schema", "redis_client", "redis_prefix"]
