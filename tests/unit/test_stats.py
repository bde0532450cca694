"""Dwell statistics against a brute-force oracle."""

from __future__ import annotations

import itertools
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.stats import Bucket, StatsVisit, percentile, venue_stats

BASE = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
PEOPLE = [uuid.UUID(int=i) for i in range(1, 6)]


@st.composite
def visits(draw: st.DrawFn) -> StatsVisit:
    start = BASE + timedelta(minutes=draw(st.integers(0, 3 * 24 * 60)))
    closed = draw(st.booleans())
    reason = draw(st.sampled_from(["scan", "payment", "auto", "superseded"])) if closed else None
    dwell = timedelta(minutes=draw(st.integers(0, 300)))
    return StatsVisit(
        visitor_id=draw(st.sampled_from(PEOPLE)),
        checked_in_at=start,
        checked_out_at=start + dwell if closed else None,
        checkout_reason=reason,
    )


def oracle_totals(
    items: list[StatsVisit], start: datetime, end: datetime
) -> tuple[int, int, object, int]:
    inside = [v for v in items if start <= v.checked_in_at < end]
    dwell = [
        (v.checked_out_at - v.checked_in_at).total_seconds()
        for v in inside
        if v.checked_out_at is not None and v.checkout_reason != "auto"
    ]
    return (
        len(inside),
        len({v.visitor_id for v in inside}),
        statistics.median(dwell) if dwell else None,
        sum(v.checkout_reason == "auto" for v in inside),
    )


@settings(max_examples=150, deadline=None)
@given(
    st.lists(visits(), max_size=40),
    st.sampled_from(list(Bucket)),
    st.sampled_from(["UTC", "Asia/Shanghai", "America/New_York", "Asia/Kathmandu"]),
    st.integers(0, 24 * 60),
    st.integers(1, 2 * 24 * 60),
)
def test_buckets_add_up_to_the_totals_and_the_totals_match_the_oracle(
    items: list[StatsVisit], bucket: Bucket, tz: str, offset: int, length: int
) -> None:
    start = BASE + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    buckets, totals = venue_stats(items, start, end, bucket, ZoneInfo(tz))
    expected = oracle_totals(items, start, end)
    assert (
        totals.check_ins,
        totals.unique_visitors,
        totals.median_dwell_seconds,
        totals.auto_closed,
    ) == expected
    assert sum(b.check_ins for b in buckets) == totals.check_ins
    assert sum(b.auto_closed for b in buckets) == totals.auto_closed
    for b, following in itertools.pairwise(buckets):
        assert b.start < following.start
        in_bucket = [v for v in items if max(b.start, start) <= v.checked_in_at < following.start]
        assert b.check_ins == len([v for v in in_bucket if v.checked_in_at < end])


def test_day_buckets_follow_local_midnight_across_a_dst_change() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, 0, 0, tzinfo=zone)
    end = datetime(2026, 3, 10, 0, 0, tzinfo=zone)
    buckets, _ = venue_stats([], start, end, Bucket.DAY, zone)
    assert [b.start.astimezone(zone).hour for b in buckets] == [0, 0, 0]
    assert buckets[2].start.astimezone(UTC) - buckets[1].start.astimezone(UTC) == timedelta(
        hours=23
    )


def test_the_p90_is_the_nearest_rank() -> None:
    assert percentile([float(x) for x in range(1, 11)], 0.9) == 9.0
    assert percentile([5.0], 0.9) == 5.0
    assert percentile([], 0.9) is None
