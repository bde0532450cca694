"""A worker's own batches that Redis parked behind an earlier one not applied yet.

They are kept so that, if only a gap (ids of rolled-back transactions) lies before them, the
worker can send the first again chained past the gap instead of waiting for the runner.
"""

from __future__ import annotations

import threading

from eventsourcing.persistence import ApplicationRecorder

from infrastructure.readmodels.redis.projection import Encoded, RedisProjector


class ParkedBatches:
    """This process's saved batches not known to be applied yet, in commit order."""

    def __init__(self, recorder: ApplicationRecorder, projector: RedisProjector) -> None:
        self._recorder = recorder
        self._projector = projector
        self._batches: list[Encoded] = []
        self._lock = threading.Lock()

    def __bool__(self) -> bool:
        return bool(self._batches)

    def keep(self, batch: Encoded) -> None:
        """Keep a batch Redis parked."""
        with self._lock:
            self._batches.append(batch)

    def passed(self, seen: int) -> None:
        """The position passed `seen`: forget the batches it covers."""
        if self._batches and self._batches[0].last <= seen:  # reads pass here too: only then
            with self._lock:
                self._batches = [b for b in self._batches if b.last > seen]

    def send_after_gap(self, gap_after: int) -> int | None:
        """Send the first kept batch again, chained to `gap_after` (only gaps lie between);
        the last position it covers if Redis applied it (and whatever was parked behind it)."""
        with self._lock:
            if not self._batches:
                return None
            batch = self._batches[0]
        if self._projector.apply_encoded(batch, after=gap_after) >= 0:
            return batch.last
        return None

    def only_gaps_before(self, position: int) -> bool:
        """Whether the log holds nothing between `position` and the first kept batch.

        Sound once that batch is committed: ids are taken under the table lock, so every
        smaller id was committed or rolled back before it.
        """
        with self._lock:
            if not self._batches:
                return False
            first = self._batches[0].first
        if first - 1 <= position:
            return False
        between = self._recorder.select_notifications(
            start=position, limit=1, stop=first - 1, inclusive_of_start=False
        )
        return not between
