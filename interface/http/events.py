"""Server-sent events: a connected visitor hears of a new exposure that matches their visits."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict
from collections.abc import AsyncGenerator
from datetime import timedelta
from typing import Any
from uuid import UUID

import msgspec
from litestar import Request, get
from litestar.di import NamedDependency
from litestar.response import ServerSentEvent, ServerSentEventMessage

from domain.ports import ExposureView, VisitLog
from interface.http.auth import services_of
from interface.http.case_schemas import MyExposure, MyExposures
from interface.http.contract import operation
from interface.http.schemas import VenueRef
from interface.http.times import to_second
from interface.http.visitors import VISITOR

KEEPALIVE_SECONDS = 15.0


class ExposureHub:
    """Per-process subscriptions of connected visitors; fed by the projection."""

    def __init__(self, visits: VisitLog) -> None:
        self._visits = visits
        self._lock = threading.Lock()
        self._subscribers: dict[UUID, set[tuple[asyncio.AbstractEventLoop, asyncio.Queue[bytes]]]]
        self._subscribers = defaultdict(set)

    def subscribe(self, visitor_id: UUID) -> asyncio.Queue[bytes]:
        """A queue that receives this visitor's exposure events."""
        queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=100)
        with self._lock:
            self._subscribers[visitor_id].add((asyncio.get_running_loop(), queue))
        return queue

    def unsubscribe(self, visitor_id: UUID, queue: asyncio.Queue[bytes]) -> None:
        """Stop delivering to a queue."""
        with self._lock:
            self._subscribers[visitor_id] = {
                pair for pair in self._subscribers[visitor_id] if pair[1] is not queue
            }
            if not self._subscribers[visitor_id]:
                del self._subscribers[visitor_id]

    def publish(self, exposure: ExposureView, venue_name: str) -> None:
        """Deliver to every connected visitor whose visit overlaps (any thread)."""
        with self._lock:
            targets = list(self._subscribers.items())
        payload = msgspec.json.encode(
            MyExposure(
                venue=VenueRef(venue_id=exposure.venue_id, name=venue_name),
                start=to_second(exposure.start),
                end=to_second(exposure.end),
                declared_at=to_second(exposure.declared_at),
                advice=exposure.advice,
            )
        )
        for visitor_id, queues in targets:
            if self._was_there(visitor_id, exposure):
                for loop, queue in queues:
                    loop.call_soon_threadsafe(_offer, queue, payload)

    def _was_there(self, visitor_id: UUID, exposure: ExposureView) -> bool:
        visits = self._visits.of_guardian(
            visitor_id, exposure.start - timedelta(days=1), exposure.end
        )
        return any(
            v.venue_id == exposure.venue_id
            and v.visitor_id not in exposure.exempt
            and v.checked_in_at <= exposure.end
            and (v.checked_out_at is None or v.checked_out_at >= exposure.start)
            for v in visits
        )


def _offer(queue: asyncio.Queue[bytes], payload: bytes) -> None:
    if not queue.full():
        queue.put_nowait(payload)


@get(
    "/v1/me/exposures",
    dependencies=VISITOR,
    sync_to_thread=True,
    **operation("my_exposures", "List exposures at my visits", tag="visitors"),
)
def my_exposures(request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID]) -> MyExposures:
    """A visitor lists the declared exposures that overlap their own visits (or their
    dependents'), each with the tracer's advice; never one declared from their own case.
    Reads only."""
    found = services_of(request).casework.exposures_of(visitor_id)
    return MyExposures(
        exposures=[
            MyExposure(
                venue=VenueRef(venue_id=venue.venue_id, name=venue.name),
                start=to_second(exposure.start),
                end=to_second(exposure.end),
                declared_at=to_second(exposure.declared_at),
                advice=exposure.advice,
            )
            for exposure, venue in found
        ]
    )


@get(
    "/v1/me/events",
    dependencies=VISITOR,
    media_type="text/event-stream",
    **operation("my_events", "Hear of new exposures (server-sent events)", tag="visitors"),
)
async def my_events(
    request: Request[Any, Any, Any], visitor_id: NamedDependency[UUID]
) -> ServerSentEvent:
    """A visitor's open stream of server-sent events: an `exposure` event (a MyExposure as
    JSON) whenever a newly declared exposure overlaps their visits; a comment every 15 s."""
    hub: ExposureHub = request.app.state.hub

    async def stream() -> AsyncGenerator[ServerSentEventMessage, None]:
        queue = hub.subscribe(visitor_id)
        try:
            yield ServerSentEventMessage(comment="connected")
            while True:
                try:
                    payload = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield ServerSentEventMessage(comment="keep-alive")
                    continue
                yield ServerSentEventMessage(event="exposure", data=payload.decode())
        finally:
            hub.unsubscribe(visitor_id, queue)

    return ServerSentEvent(stream(), headers={"Cache-Control": "no-store"})


event_handlers = [my_exposures, my_events]
