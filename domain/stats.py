"""Dwell statistics of one venue: k-anonymous figures over whole hours, as pure functions.

Privacy rests on one rule: the hour of UTC is the atom. Every bucket, of any width, in any
zone, and every total, is computed from whole hours that each hold at least `K` unique
visitors and have ended; the visits of every other hour enter no figure at all. So no
combination of answers (shifted windows, hour against day buckets, one zone against another,
the same question asked again later) says anything about an hour that is not shown, and
nothing finer than an hour about one that is. Check-outs and dwell are shown once every visit
of the hour has closed, so a figure, once shown, does not move as people leave.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from itertools import pairwise
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from domain.errors import InvalidInputError

K = 5
MAX_WINDOW = timedelta(days=92)
HOUR = timedelta(hours=1)


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
    """Figures of one bucket (or of the whole window); all None when `suppressed`.

    Counts cover the bucket's shown hours. Dwell (whole seconds) and `auto_closed` cover the
    shown hours whose visits have all closed; dwell only hours with at least `K` visitors
    who left by a check-out of their own.
    """

    start: datetime
    suppressed: bool
    check_ins: int | None = None
    unique_visitors: int | None = None
    median_dwell_seconds: int | None = None
    p90_dwell_seconds: int | None = None
    auto_closed: int | None = None


class VenueStats(msgspec.Struct, frozen=True):
    """The answer: the window as rounded to whole buckets, its buckets and their totals."""

    start: datetime
    end: datetime
    buckets: list[BucketStats]
    totals: BucketStats


class TooManyBucketsError(InvalidInputError):
    """The window spans more than one answer may."""

    kind = "too-many-buckets"


class ZoneNotWholeHoursError(InvalidInputError):
    """The zone puts bucket boundaries off the whole hours of UTC."""

    kind = "time-zone-not-whole-hours"


def percentile(sorted_values: list[int], fraction: float) -> int | None:
    """Nearest-rank percentile of already sorted values (None when empty)."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


def stats_window(start: datetime, end: datetime, bucket: Bucket, tz: ZoneInfo) -> list[datetime]:
    """Boundaries of the buckets covering [start, end), rounded outward to whole buckets of `tz`.

    Bucket `i` is [bounds[i], bounds[i + 1]). Rounding outward means that any `from` or `to`
    inside a bucket gives the answer of its boundary, so bisecting them learns nothing.
    """
    first = _floor(start, bucket, tz)
    last = _floor(end, bucket, tz)
    if last.astimezone(UTC) < end.astimezone(UTC):
        last = _next(last, bucket, tz)
    if _wall_clock(last) - _wall_clock(first) > MAX_WINDOW:
        raise TooManyBucketsError(f"the window may span at most {MAX_WINDOW.days} days")
    bounds = [first]
    # Compared in UTC: times of one zone compare by the wall clock, which repeats an hour.
    while bounds[-1].astimezone(UTC) < last.astimezone(UTC):
        bounds.append(_next(bounds[-1], bucket, tz))
    for bound in bounds:
        if bound.astimezone(UTC) != _hour_of(bound):
            raise ZoneNotWholeHoursError("stats are given in zones whose UTC offset is whole hours")
    return bounds


def venue_stats(visits: Iterable[StatsVisit], bounds: list[datetime], now: datetime) -> VenueStats:
    """Per-bucket and total figures of the visits that began inside `bounds`, as of `now`."""
    lowest, highest = bounds[0].astimezone(UTC), bounds[-1].astimezone(UTC)
    inside_window = (v for v in visits if lowest <= v.checked_in_at < highest)
    ordered = sorted(shown_hours(inside_window, now).items(), key=lambda item: item[0])
    buckets: list[BucketStats] = []
    index = 0
    for lower, upper in pairwise(bounds):
        inside: list[list[StatsVisit]] = []
        while index < len(ordered) and ordered[index][0] < upper.astimezone(UTC):
            inside.append(ordered[index][1])
            index += 1
        buckets.append(summarise(lower, inside))
    totals = summarise(bounds[0], [group for _, group in ordered])
    return VenueStats(start=bounds[0], end=bounds[-1], buckets=buckets, totals=totals)


def shown_hours(visits: Iterable[StatsVisit], now: datetime) -> dict[datetime, list[StatsVisit]]:
    """Visits by the UTC hour they began in, keeping the ended hours of at least `K` visitors."""
    by_hour: defaultdict[datetime, list[StatsVisit]] = defaultdict(list)
    for visit in visits:
        by_hour[_hour_of(visit.checked_in_at)].append(visit)
    # An hour still running could be watched filling up, one check-in at a time.
    return {h: group for h, group in by_hour.items() if h + HOUR <= now and _unique(group) >= K}


def summarise(start: datetime, hours: list[list[StatsVisit]]) -> BucketStats:
    """Figures of a bucket from its shown hours; suppressed when it has none."""
    if not hours:
        return BucketStats(start=start, suppressed=True)
    items = [v for group in hours for v in group]
    settled = [group for group in hours if all(v.checked_out_at is not None for v in group)]
    dwell = sorted(seconds for group in settled for seconds in _dwell_of(group))
    return BucketStats(
        start=start,
        suppressed=False,
        check_ins=len(items),
        unique_visitors=_unique(items),
        median_dwell_seconds=round(statistics.median(dwell)) if dwell else None,
        p90_dwell_seconds=percentile(dwell, 0.9),
        auto_closed=(
            sum(v.checkout_reason == "auto" for group in settled for v in group)
            if settled
            else None
        ),
    )


def _dwell_of(group: list[StatsVisit]) -> list[int]:
    # Visits closed by `auto` only say when the maximum dwell ran out, not how long anyone
    # stayed. Fewer than K who left by themselves would make a median one person's stay.
    stays = [
        (v.visitor_id, v.checked_out_at - v.checked_in_at)
        for v in group
        if v.checked_out_at is not None and v.checkout_reason != "auto"
    ]
    if len({visitor for visitor, _ in stays}) < K:
        return []
    return [int(stay.total_seconds()) for _, stay in stays]


def _unique(group: list[StatsVisit]) -> int:
    return len({v.visitor_id for v in group})


def _hour_of(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def _wall_clock(at: datetime) -> datetime:
    return at.replace(tzinfo=None)


def _floor(at: datetime, bucket: Bucket, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    if bucket is Bucket.DAY:
        return _midnight(local.date(), tz)
    return local.replace(minute=0, second=0, microsecond=0).astimezone(UTC).astimezone(tz)


def _next(bound: datetime, bucket: Bucket, tz: ZoneInfo) -> datetime:
    if bucket is Bucket.DAY:
        # By the calendar, so days stay on local midnight across DST changes.
        return _midnight(bound.astimezone(tz).date() + timedelta(days=1), tz)
    return (bound.astimezone(UTC) + HOUR).astimezone(tz)


def _midnight(day: date, tz: ZoneInfo) -> datetime:
    # Through UTC, so a midnight that a DST change skips becomes the day's first instant.
    return datetime.combine(day, time(), tzinfo=tz).astimezone(UTC).astimezone(tz)
