"""A venue's figures for its owner: k-anonymous dwell statistics and live occupancy."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from domain.errors import InvalidInputError
from domain.stats import Bucket, BucketStats
from interface.http.auth import parse_time, services_of
from interface.http.contract import operation
from interface.http.merchants import MERCHANT, TAG
from interface.http.schemas import OccupancyOut, StatsBucketOut, StatsOut

From = Annotated[
    str | None,
    QueryParameter(
        name="from",
        required=False,
        description="RFC 3339 time with an offset, rounded down to a whole bucket; "
        "default one day before `to`.",
    ),
]
To = Annotated[
    str | None,
    QueryParameter(
        name="to",
        required=False,
        description="RFC 3339 time with an offset, rounded up to a whole bucket; default now.",
    ),
]
BucketParam = Annotated[
    Bucket, QueryParameter(name="bucket", required=False, description="`hour` or `day`.")
]
TzParam = Annotated[
    str,
    QueryParameter(
        name="tz",
        required=False,
        max_length=64,
        description="An IANA time zone whose offset is whole hours, such as Asia/Shanghai.",
    ),
]


@get(
    "/v1/venues/{venue_id:uuid}/stats",
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("venue_stats", "Show a venue's statistics", tag=TAG, problems=(400, 404)),
)
def venue_stats(
    request: Request[Any, Any, Any],
    merchant_id: NamedDependency[UUID],
    venue_id: FromPath[UUID],
    start: From = None,
    end: To = None,
    bucket: BucketParam = Bucket.HOUR,
    tz: TzParam = "UTC",
) -> StatsOut:
    """The owner's check-ins, unique visitors and dwell (whole seconds) per hour or day,
    k-anonymous and never a visitor id. `from` and `to` are rounded outward to whole buckets
    of `tz` (at most 92 days); the answer says the window it covers. A bucket of fewer than 5
    unique visitors is `suppressed`, with no figures."""
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInputError("`tz` is not a known IANA time zone") from None
    app = services_of(request).app
    to = parse_time(end, "to") if end else app.ports.clock.now()
    since = parse_time(start, "from") if start else to - timedelta(days=1)
    stats = app.venue_stats(merchant_id, venue_id, since, to, bucket, zone)
    return StatsOut(
        start=stats.start,
        end=stats.end,
        buckets=[_bucket_out(b) for b in stats.buckets],
        totals=_bucket_out(stats.totals),
    )


def _bucket_out(b: BucketStats) -> StatsBucketOut:
    return StatsBucketOut(
        start=b.start,
        suppressed=b.suppressed,
        check_ins=b.check_ins,
        unique_visitors=b.unique_visitors,
        median_dwell_seconds=b.median_dwell_seconds,
        p90_dwell_seconds=b.p90_dwell_seconds,
        auto_closed=b.auto_closed,
    )


@get(
    "/v1/venues/{venue_id:uuid}/occupancy",
    dependencies=MERCHANT,
    sync_to_thread=True,
    **operation("occupancy", "Show a venue's occupancy", tag=TAG, problems=(400, 404)),
)
def occupancy(
    request: Request[Any, Any, Any], merchant_id: NamedDependency[UUID], venue_id: FromPath[UUID]
) -> OccupancyOut:
    """How many people are in the owner's venue now (open visits), and its capacity."""
    current, capacity = services_of(request).app.occupancy(merchant_id, venue_id)
    return OccupancyOut(current=current, capacity=capacity)


venue_figure_handlers = [venue_stats, occupancy]
