"""A runner's failures (retried after a growing wait, logged without their message) and lag."""

from __future__ import annotations

import json
import logging

import pytest

from infrastructure.projections.health import Failures, LagWatch
from interface.http.observability import JsonLinesFormatter, PrivacyFilter


class Clock:
    """Monotonic seconds that the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


# A message quoting personal data, as a careless one might (tracebacks show source lines, not
# values: the raise below names only the constant).
MESSAGE = "no row for +8613912345678 王秀英"


def failing_lookup() -> None:
    raise LookupError(MESSAGE)


def caught() -> LookupError:
    try:
        failing_lookup()
    except LookupError as error:
        return error
    raise AssertionError("it did not fail")


def test_the_wait_between_tries_doubles_up_to_its_ceiling() -> None:
    clock = Clock()
    failures = Failures(first_retry=0.5, longest_retry=30.0, clock=clock)

    waits = []
    for _ in range(9):
        failures.failed(caught(), position=7)
        waits.append(failures.delay(otherwise=99.0))

    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_a_failing_runner_tries_again_only_once_its_wait_is_over() -> None:
    clock = Clock()
    failures = Failures(first_retry=0.5, clock=clock)
    failures.failed(caught(), position=7)

    assert not failures.due()
    clock.now += 0.5
    assert failures.due()


def test_a_failure_says_since_when_and_with_what_error() -> None:
    failures = Failures(clock=Clock())
    failures.failed(caught(), position=7)
    first = failures.current
    failures.failed(caught(), position=7)

    assert first is not None
    assert failures.current == first  # failing since the first failure
    assert (first.state, first.error) == ("failing", "LookupError")


def test_a_recovery_clears_the_failure_and_starts_the_waits_over() -> None:
    clock = Clock()
    failures = Failures(first_retry=0.5, clock=clock)
    for _ in range(3):
        failures.failed(caught(), position=7)

    assert failures.recovered()
    failures.failed(caught(), position=9)

    assert failures.delay(otherwise=99.0) == 0.5
    assert failures.recovered()
    assert not failures.recovered()
    assert failures.current is None
    assert failures.delay(otherwise=99.0) == 99.0


def test_a_failure_is_logged_with_its_frames_and_type_but_not_its_message(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="fangxin.projections"):
        Failures(clock=Clock()).failed(caught(), position=7)

    [record] = caplog.records
    PrivacyFilter().filter(record)
    line = json.loads(JsonLinesFormatter().format(record))
    assert line["level"] == "error"
    assert (line["error_type"], line["position"], line["projection"]) == (
        "LookupError",
        7,
        "read_models",
    )
    assert "failing_lookup" in line["traceback"]  # the frame where it failed
    assert "LookupError" in line["traceback"]
    for personal in ("8613912345678", "王秀英", "no row"):
        assert personal not in json.dumps(line, ensure_ascii=False)


def test_a_lag_within_the_limit_is_healthy() -> None:
    watch = LagWatch(limit=100, grace=30.0, clock=Clock())

    assert watch.behind_since(100) is None


def test_a_lag_over_the_limit_counts_only_once_it_lasts_the_grace_period() -> None:
    clock = Clock()
    watch = LagWatch(limit=100, grace=30.0, clock=clock)

    assert watch.behind_since(500) is None
    clock.now += 29.0
    assert watch.behind_since(800) is None
    clock.now += 1.0
    assert watch.behind_since(900) is not None


def test_a_lag_that_falls_back_under_the_limit_starts_the_grace_period_over() -> None:
    clock = Clock()
    watch = LagWatch(limit=100, grace=30.0, clock=clock)
    watch.behind_since(500)
    clock.now += 20.0
    watch.behind_since(50)
    clock.now += 20.0

    assert watch.behind_since(500) is None


def test_a_position_that_moves_starts_the_grace_period_over_however_far_behind() -> None:
    # How a worker judges the history that another process follows (`FollowedElsewhere`).
    clock = Clock()
    watch = LagWatch(limit=0, grace=10.0, clock=clock)
    assert watch.behind_since(5, position=40) is None
    clock.now += 9.0
    assert watch.behind_since(300, position=41) is None  # it moves: a busy log, not a stall
    clock.now += 9.0
    assert watch.behind_since(700, position=90) is None
    clock.now += 10.0

    stalled = watch.behind_since(700, position=90)  # ten seconds without moving
    assert stalled is not None
    clock.now += 5.0
    assert watch.behind_since(800, position=90) == stalled
    assert watch.behind_since(0, position=800) is None  # caught up
