"""Dwell statistics of one venue: pure functions over visits."""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator
from datetime import datetime, timedelta
from enum import StrEnum
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import InvalidInputError

MAX_BUCKETS = 24 * 92


class Bucket(StrEnum):
    """The width of a statistics bucket."""

    HOUR = "hour"
    DAY = "day"


class StatsVisit(msgspec.Struct, frozen=True):
    """The part of a visit that statistics need: no name, no phone."""

    visitor_id: UUID
    checked_in_at: datetime
    checked_out_at: datetime | None
    checkout_reason: str | None


class BucketStats(msgspec.Struct, frozen=True):
    """Figures of one bucket (or of the whole window)."""

    start: datetime
    check_ins: int
    unique_visitors: int
    median_dwell_seconds: float | None
    p90_dwell_seconds: float | None
    auto_closed: int


class TooManyBucketsError(InvalidInputError):
    """The window holds more buckets than one answer may."""

    kind = "too-many-buckets"


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def summarise(start: datetime, visits: Iterable[StatsVisit]) -> BucketStats:
    """Figures of a group of visits; dwell uses closed visits not closed by `auto`."""
    items = list(visits)
    dwell = sorted(
        (v.checked_out_at - v.checked_in_at).total_seconds()
        for v in items
        if v.checked_out_at is not None and v.checkout_reason != "auto"
    )
    return BucketStats(
        start=start,
        check_ins=len(items),
        unique_visitors=len({v.visitor_id for v in items}),
        median_dwell_seconds=statistics.median(dwell) if dwell else None,
        p90_dwell_seconds=percentile(dwell, 0.9),
        auto_closed=sum(1 for v in items if v.checkout_reason == "auto"),
    )


def bucket_starts(start: datetime, end: datetime, bucket: Bucket, tz: ZoneInfo) -> list[datetime]:
    """Bucket boundaries covering [start, end), aligned to the local hour or midnight of `tz`."""
    local = start.astimezone(tz)
    if bucket is Bucket.DAY:
        first = local.replace(hour=0, minute=0, second=0, microsecond=0)
    else:
        first = local.replace(minute=0, second=0, microsecond=0)
    starts: list[datetime] = []
    current = first
    while current < end:
        if len(starts) >= MAX_BUCKETS:
            raise TooManyBucketsError(f"at most {MAX_BUCKETS} buckets per answer")
        starts.append(current)
        current = _next_start(current, bucket, tz)
    return starts


def _next_start(current: datetime, bucket: Bucket, tz: ZoneInfo) -> datetime:
    if bucket is Bucket.DAY:
        # Wall-clock arithmetic, so days stay aligned to local midnight across DST changes.
        following = (current.replace(tzinfo=None) + timedelta(days=1)).replace(tzinfo=tz)
        return following.astimezone(tz)
    utc_next = current.astimezone(ZoneInfo("UTC")) + timedelta(hours=1)
    return utc_next.astimezone(tz)


def venue_stats(
    visits: Iterable[StatsVisit], start: datetime, end: datetime, bucket: Bucket, tz: ZoneInfo
) -> tuple[list[BucketStats], BucketStats]:
    """Per-bucket and total figures of the visits that began in [start, end)."""
    starts = bucket_starts(start, end, bucket, tz)
    in_window = sorted(
        (v for v in visits if start <= v.checked_in_at < end), key=lambda v: v.checked_in_at
    )
    groups = list(_group(in_window, starts))
    buckets = [summarise(s, group) for s, group in zip(starts, groups, strict=True)]
    return buckets, summarise(start, in_window)


def _group(visits: list[StatsVisit], starts: list[datetime]) -> Iterator[list[StatsVisit]]:
    index = 0
    for i, _ in enumerate(starts):
        upper = starts[i + 1] if i + 1 < len(starts) else None
        group: list[StatsVisit] = []
        while index < len(visits) and (upper is None or visits[index].checked_in_at < upper):
            group.append(visits[index])
            index += 1
        yield group
