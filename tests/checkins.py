"""A check-in from synchronous test code: the application's check-in runs on an event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from uuid import UUID

from domain.answers import CheckedIn
from infrastructure.services import Services


def check_in(
    services: Services,
    visitor_id: UUID,
    code: str,
    party: Sequence[str] = (),
    idempotency_key: str | None = None,
) -> CheckedIn:
    """Check in on a loop of its own, closed with the loop's Redis client."""

    async def on_a_loop() -> CheckedIn:
        try:
            return await services.app.check_in(visitor_id, code, party, idempotency_key)
        finally:
            if services.loop_clients is not None:
                await services.loop_clients.close()

    return asyncio.run(on_a_loop())
