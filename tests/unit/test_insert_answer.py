"""The insert function's answer, matched back to the events of a batch."""

from __future__ import annotations

import pytest
from eventsourcing.persistence import InternalError

from infrastructure.eventstore.postgres import _by_event


def test_ids_go_to_the_kept_events_in_order_and_refused_writers_get_none() -> None:
    # Writers 0, 1 (two events), 2 (two events), 3; writers 1 and 3 refused.
    writers = [0, 1, 1, 2, 2, 3]
    assert _by_event([41, 42, 43, -2, -4], writers) == [41, None, None, 42, 43, None]
    assert _by_event([7, 8], [0, 0]) == [7, 8]
    assert _by_event([-1], [0, 0]) == [None, None]


def test_an_answer_that_does_not_match_the_batch_is_an_error_not_a_guess() -> None:
    with pytest.raises(InternalError):
        _by_event([41, -2], [0, 1, 2])  # two events kept, one id
    with pytest.raises(InternalError):
        _by_event([41, 42], [0])
