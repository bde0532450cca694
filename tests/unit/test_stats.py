"""K-anonymous dwell statistics against a brute-force oracle, and the attacks they withstand."""

from __future__ import annotations

import itertools
import statistics
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.stats import (
    HOUR,
    Bucket,
    BucketStats,
    K,
    StatsVisit,
    TooManyBucketsError,
    VenueStats,
    ZoneNotWholeHoursError,
    percentile,
    stats_window,
    venue_stats,
)

BASE = datetime(2026, 3, 8, 0, 0, tzinfo=UTC)
PEOPLE = [uuid.UUID(int=i) for i in range(1, 9)]
BUSY_HOURS = [1, 10, 23, 30]
ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Pacific/Kiritimati", "Etc/GMT+12"]
# Every whole-hour offset there is, from -12 to +14: the zones a merchant could shift by.
EVERY_OFFSET = [f"Etc/GMT{-hours:+d}" if hours else "UTC" for hours in range(-12, 15)]


@st.composite
def visits(draw: st.DrawFn) -> StatsVisit:
    # Mostly a few busy hours, so that shown and suppressed hours both occur.
    busy = st.sampled_from(BUSY_HOURS)
    hour = draw(st.one_of(busy, busy, busy, st.integers(0, 3 * 24 - 1)))
    start = BASE + timedelta(hours=hour, seconds=draw(st.integers(0, 3599)))
    closed = draw(st.integers(0, 9)) > 0
    reason = draw(st.sampled_from(["scan", "payment", "auto", "superseded"])) if closed else None
    dwell = timedelta(seconds=draw(st.integers(0, 300 * 60)), microseconds=draw(st.integers(0, 9)))
    return StatsVisit(
        visitor_id=draw(st.sampled_from(PEOPLE)),
        checked_in_at=start,
        checked_out_at=start + dwell if closed else None,
        checkout_reason=reason,
    )


def oracle(items: list[StatsVisit], lower: datetime, upper: datetime, now: datetime) -> BucketStats:
    """A bucket by the definition: every UTC hour in it, shown or not, one by one."""
    shown: list[list[StatsVisit]] = []
    hour = lower.astimezone(UTC)
    while hour < upper:
        group = [v for v in items if hour <= v.checked_in_at < hour + HOUR]
        if hour + HOUR <= now and len({v.visitor_id for v in group}) >= K:
            shown.append(group)
        hour += HOUR
    if not shown:
        return BucketStats(start=lower, suppressed=True)
    inside = [v for group in shown for v in group]
    settled = [g for g in shown if all(v.checked_out_at is not None for v in g)]
    dwell: list[int] = []
    for group in settled:
        left = [v for v in group if v.checked_out_at is not None and v.checkout_reason != "auto"]
        if len({v.visitor_id for v in left}) >= K:
            for v in left:
                assert v.checked_out_at is not None
                dwell.append(int((v.checked_out_at - v.checked_in_at).total_seconds()))
    dwell.sort()
    return BucketStats(
        start=lower,
        suppressed=False,
        check_ins=len(inside),
        unique_visitors=len({v.visitor_id for v in inside}),
        median_dwell_seconds=round(statistics.median(dwell)) if dwell else None,
        p90_dwell_seconds=percentile(dwell, 0.9),
        auto_closed=sum(v.checkout_reason == "auto" for g in settled for v in g)
        if settled
        else None,
    )


def ask(
    items: list[StatsVisit],
    start: datetime,
    end: datetime,
    bucket: Bucket,
    tz: str,
    now: datetime,
) -> VenueStats:
    return venue_stats(items, stats_window(start, end, bucket, ZoneInfo(tz)), now)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(visits(), max_size=60),
    st.sampled_from(list(Bucket)),
    st.sampled_from(ZONES),
    st.integers(0, 24 * 60),
    st.integers(1, 2 * 24 * 60),
    st.integers(0, 4 * 24),
)
def test_every_bucket_and_the_totals_match_the_oracle(
    items: list[StatsVisit], bucket: Bucket, tz: str, offset: int, length: int, now_hours: int
) -> None:
    start = BASE + timedelta(minutes=offset)
    now = BASE + timedelta(hours=now_hours, minutes=30)
    stats = ask(items, start, start + timedelta(minutes=length), bucket, tz, now)
    bounds = [b.start for b in stats.buckets] + [stats.end]
    for b, (lower, upper) in zip(stats.buckets, itertools.pairwise(bounds), strict=True):
        assert b == oracle(items, lower, upper, now)
    assert stats.totals == oracle(items, stats.start, stats.end, now)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from(list(Bucket)),
    st.sampled_from([*ZONES, "Europe/London", "America/Santiago"]),
    st.integers(0, 400 * 24 * 60),
    st.integers(1, 40 * 24 * 60),
)
def test_the_window_is_rounded_outward_to_whole_buckets_of_the_zone(
    bucket: Bucket, tz: str, offset: int, length: int
) -> None:
    zone = ZoneInfo(tz)
    start = BASE + timedelta(minutes=offset)
    end = start + timedelta(minutes=length)
    bounds = stats_window(start, end, bucket, zone)
    assert bounds[0] <= start < bounds[1]
    assert bounds[-2] < end <= bounds[-1]
    for lower, upper in itertools.pairwise(bounds):
        local = lower.astimezone(zone)
        assert (local.minute, local.second, local.microsecond) == (0, 0, 0)
        if bucket is Bucket.HOUR:
            assert upper.astimezone(UTC) - lower.astimezone(UTC) == HOUR
        else:
            assert upper.astimezone(zone).date() - local.date() == timedelta(days=1)
            # Local midnight, or the day's first instant when a DST change skips midnight.
            assert (lower.astimezone(UTC) - HOUR).astimezone(zone).date() < local.date()
    # Any `from` and `to` inside the same buckets give the same window: bisecting learns nothing.
    assert stats_window(bounds[0], bounds[-1], bucket, zone) == bounds


def test_a_merchant_differencing_any_windows_learns_nothing_of_a_quiet_hour() -> None:
    # Given busy hours of six regulars, and at 13:20 one more visit: nobody's, a stranger's,
    # or one of the regulars coming back.
    regulars = PEOPLE[:6]
    busy = [
        StatsVisit(person, BASE + timedelta(hours=h, minutes=5 * i), None, None)
        for h in (10, 11, 12, 14)
        for i, person in enumerate(regulars)
    ]
    quiet = BASE + timedelta(hours=13, minutes=20)
    worlds = [
        busy,
        [*busy, StatsVisit(PEOPLE[7], quiet, quiet + HOUR, "scan")],
        [*busy, StatsVisit(regulars[0], quiet, quiet + HOUR, "scan")],
    ]
    now = BASE + timedelta(days=2)
    # When the merchant asks everything it could to isolate the quiet hour: hour and day
    # buckets in every offset, windows that start and end at each quarter of an hour around it.
    edges = [BASE + timedelta(hours=9, minutes=15 * q) for q in range(4 * 7)]
    questions = [
        (start, end, bucket, tz)
        for bucket in Bucket
        for tz in EVERY_OFFSET
        for start, end in itertools.combinations(edges[::3], 2)
    ] + [(start, end, Bucket.HOUR, "UTC") for start, end in itertools.combinations(edges, 2)]
    answers = [[ask(items, *question, now) for question in questions] for items in worlds]
    # Then every answer is the same in the three worlds: the quiet hour cannot be told apart.
    assert answers[0] == answers[1] == answers[2]
    assert any(not a.totals.suppressed for a in answers[0])


def test_changing_any_suppressed_hour_changes_no_answer() -> None:
    # Given one venue's visits, and the same visits without its suppressed hours.
    items = [
        StatsVisit(PEOPLE[i % 8], BASE + timedelta(hours=h, minutes=7 * i), None, None)
        for h, count in [(2, 3), (8, 6), (9, 4), (20, 5), (27, 1)]
        for i in range(count)
    ]
    now = BASE + timedelta(days=3)
    shown_only = [v for v in items if v.checked_in_at.hour in (8, 20)]
    # Then any question in any zone gets the same answer from both.
    for bucket, tz in itertools.product(Bucket, EVERY_OFFSET):
        start, end = BASE - timedelta(days=1), BASE + timedelta(days=2)
        assert ask(items, start, end, bucket, tz, now) == ask(
            shown_only, start, end, bucket, tz, now
        )


def six_visits(at: datetime, dwell: timedelta | None, reason: str | None) -> list[StatsVisit]:
    return [
        StatsVisit(person, at, None if dwell is None else at + dwell, reason)
        for person in PEOPLE[:6]
    ]


def test_an_hour_of_five_visitors_is_shown_and_of_four_suppressed() -> None:
    at = BASE + timedelta(hours=10, minutes=1)
    five = six_visits(at, timedelta(minutes=30), "scan")[:5]
    now = BASE + timedelta(days=1)
    shown = ask(five, BASE, BASE + timedelta(days=1), Bucket.HOUR, "UTC", now).buckets[10]
    hidden = ask(five[:4], BASE, BASE + timedelta(days=1), Bucket.HOUR, "UTC", now).buckets[10]
    assert (shown.suppressed, shown.check_ins, shown.unique_visitors) == (False, 5, 5)
    assert shown.median_dwell_seconds == 30 * 60
    assert hidden == BucketStats(start=BASE + timedelta(hours=10), suppressed=True)


def test_an_hour_not_yet_ended_is_suppressed() -> None:
    at = BASE + timedelta(hours=10, minutes=1)
    items = six_visits(at, None, None)
    during = ask(
        items, BASE, BASE + timedelta(days=1), Bucket.DAY, "UTC", at + timedelta(minutes=58)
    )
    after = ask(
        items, BASE, BASE + timedelta(days=1), Bucket.DAY, "UTC", at + timedelta(minutes=59)
    )
    assert during.buckets[0].suppressed
    assert during.totals.suppressed
    assert after.buckets[0].check_ins == 6


def test_dwell_is_shown_once_every_visit_of_the_hour_has_closed() -> None:
    at = BASE + timedelta(hours=10)
    items = six_visits(at, timedelta(minutes=20, microseconds=7), "scan")
    still_inside = [*items[:5], StatsVisit(items[5].visitor_id, at, None, None)]
    now = BASE + timedelta(days=1)
    open_hour = ask(still_inside, at, at + HOUR, Bucket.HOUR, "UTC", now).totals
    closed_hour = ask(items, at, at + HOUR, Bucket.HOUR, "UTC", now).totals
    assert (open_hour.check_ins, open_hour.median_dwell_seconds, open_hour.auto_closed) == (
        6,
        None,
        None,
    )
    assert closed_hour.median_dwell_seconds == 20 * 60
    assert isinstance(closed_hour.median_dwell_seconds, int)
    assert (closed_hour.p90_dwell_seconds, closed_hour.auto_closed) == (20 * 60, 0)


def test_dwell_needs_five_visitors_who_checked_out_themselves() -> None:
    at = BASE + timedelta(hours=10)
    items = six_visits(at, timedelta(hours=1), "auto")
    items[0] = StatsVisit(items[0].visitor_id, at, at + timedelta(minutes=17), "scan")
    totals = ask(items, at, at + HOUR, Bucket.HOUR, "UTC", BASE + timedelta(days=1)).totals
    assert (totals.check_ins, totals.auto_closed) == (6, 5)
    assert totals.median_dwell_seconds is None
    assert totals.p90_dwell_seconds is None


def test_day_buckets_follow_local_midnight_across_a_dst_change() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 3, 7, 0, 0, tzinfo=zone)
    bounds = stats_window(start, datetime(2026, 3, 10, 0, 0, tzinfo=zone), Bucket.DAY, zone)
    assert [b.astimezone(zone).hour for b in bounds] == [0, 0, 0, 0]
    assert bounds[2].astimezone(UTC) - bounds[1].astimezone(UTC) == timedelta(hours=23)


def test_hour_buckets_count_the_hour_that_a_dst_change_repeats() -> None:
    zone = ZoneInfo("America/New_York")
    start = datetime(2026, 11, 1, 0, 0, tzinfo=zone)
    second_one_oclock = datetime(2026, 11, 1, 1, 0, fold=1, tzinfo=zone)
    bounds = stats_window(start, second_one_oclock, Bucket.HOUR, zone)
    assert [b.astimezone(UTC).hour for b in bounds] == [4, 5, 6]


def test_a_day_whose_midnight_a_dst_change_skips_starts_at_its_first_hour() -> None:
    zone = ZoneInfo("America/Santiago")  # 2026-09-06 00:00 does not exist
    start = datetime(2026, 9, 5, 12, 0, tzinfo=zone)
    bounds = stats_window(start, datetime(2026, 9, 8, 0, 0, tzinfo=zone), Bucket.DAY, zone)
    assert [b.astimezone(zone).isoformat() for b in bounds] == [
        "2026-09-05T00:00:00-04:00",
        "2026-09-06T01:00:00-03:00",
        "2026-09-07T00:00:00-03:00",
        "2026-09-08T00:00:00-03:00",
    ]


@pytest.mark.parametrize("tz", ["Asia/Kathmandu", "Asia/Kolkata", "Australia/Adelaide"])
def test_a_zone_off_the_whole_hours_of_utc_is_refused(tz: str) -> None:
    with pytest.raises(ZoneNotWholeHoursError):
        stats_window(BASE, BASE + timedelta(days=1), Bucket.HOUR, ZoneInfo(tz))


@pytest.mark.parametrize("bucket", list(Bucket))
def test_a_window_of_92_days_is_answered_and_a_longer_one_refused(bucket: Bucket) -> None:
    zone = ZoneInfo("Asia/Shanghai")
    start = datetime(2026, 1, 1, tzinfo=zone)
    assert len(stats_window(start, start + timedelta(days=92), bucket, zone)) > 92
    with pytest.raises(TooManyBucketsError):
        stats_window(start, start + timedelta(days=92, minutes=1), bucket, zone)


def test_the_p90_is_the_nearest_rank() -> None:
    assert percentile(list(range(1, 11)), 0.9) == 9
    assert percentile([5], 0.9) == 5
    assert percentile([], 0.9) is None
