"""The workers' feed over Redis pub/sub: erasures, changes, positions and exposures reach
every worker at once."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import msgspec
import redis

from domain.outreach_ports import NoticeView
from domain.ports import ExposureView
from infrastructure.readmodels.redis.records import RedisRecords

log = logging.getLogger("fangxin.events")


class RedisFeed:
    """Deployment-wide news for this worker: declared exposures, and destroyed keys.

    The runner publishes exposures (any worker's visitors may be listening); a worker that
    destroys a key publishes its id so every other worker drops it from its key cache.
    """

    def __init__(self, client: redis.Redis, records: RedisRecords) -> None:
        self._client = client
        self._records = records
        prefix = records.prefix
        self._channel = prefix + "exposures"
        self._shredded = prefix + "shredded"
        self._changed = prefix + "changed"
        self._position = prefix + "pos"
        self._position_listeners: list[Callable[[int], None]] = []
        self._change_listeners: list[Callable[[str], None]] = []
        self._listeners: list[Callable[[ExposureView], None]] = []
        self._shred_listeners: list[Callable[[list[bytes]], None]] = []
        self._subscribe_listeners: list[Callable[[], None]] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._decoder = msgspec.msgpack.Decoder(ExposureView)
        # Merchants' notices reach connected visitors the same way (issue 19).
        self._notices = prefix + "notices"
        self._notice_listeners: list[Callable[[NoticeView], None]] = []
        self._notice_decoder = msgspec.msgpack.Decoder(NoticeView)

    def on_notice(self, listener: Callable[[NoticeView], None]) -> None:
        """Call `listener` for every notice sent from now on."""
        self._notice_listeners.append(listener)

    def on_exposure(self, listener: Callable[[ExposureView], None]) -> None:
        """Call `listener` for every exposure declared from now on."""
        self._listeners.append(listener)

    def on_shredded(self, listener: Callable[[list[bytes]], None]) -> None:
        """Call `listener` with the ids of keys any worker destroyed."""
        self._shred_listeners.append(listener)

    def on_changed(self, listener: Callable[[str], None]) -> None:
        """Call `listener` with `principal:P` or `venue:P` (P a pseudonym) when the runner
        changes one."""
        self._change_listeners.append(listener)

    def on_position(self, listener: Callable[[int], None]) -> None:
        """Call `listener` with the projection's position each time it moves."""
        self._position_listeners.append(listener)

    def on_subscribed(self, listener: Callable[[], None]) -> None:
        """Call `listener` each time the feed (re)subscribes.

        Pub/sub delivers nothing to a subscriber while it is disconnected: whatever a worker
        cached from before may have missed an erasure or a rotation, so it drops it all then.
        """
        self._subscribe_listeners.append(listener)

    def publish_shredded(self, key_ids: list[bytes]) -> None:
        """Tell every worker that these keys are gone."""
        self._client.publish(self._shredded, b"".join(key_ids))

    def start(self) -> None:
        """Listen in a background thread."""
        self._thread = threading.Thread(target=self._listen, name="exposure-feed", daemon=True)
        self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            pubsub = self._client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
            try:
                pubsub.subscribe(
                    self._channel, self._shredded, self._changed, self._position, self._notices
                )
                for subscribe_listener in self._subscribe_listeners:
                    subscribe_listener()
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.5)
                    if message is not None and isinstance(message.get("data"), bytes):
                        self._deliver(message["channel"], message["data"])
            except (redis.RedisError, OSError) as exc:
                log.warning("exposure feed reconnecting", extra={"error": type(exc).__name__})
                self._stop.wait(1.0)
            finally:
                pubsub.close()

    def _deliver(self, channel: bytes, data: bytes) -> None:
        if channel.decode() == self._position:
            for position_listener in self._position_listeners:
                position_listener(int(data))
            return
        if channel.decode() == self._changed:
            for change_listener in self._change_listeners:
                change_listener(data.decode())
            return
        if channel.decode() == self._shredded:
            ids = [data[i : i + 16] for i in range(0, len(data), 16)]
            for shred_listener in self._shred_listeners:
                shred_listener(ids)
            return
        if channel.decode() == self._notices:
            notice = self._records.open(self._notices, data, self._notice_decoder, "notice")
            if notice is not None:
                for notice_listener in self._notice_listeners:
                    notice_listener(notice)
            return
        # Sealed by the projection: a message published by anyone else is refused.
        exposure = self._records.open(self._channel, data, self._decoder, "exposure")
        if exposure is None:
            return
        for listener in self._listeners:
            listener(exposure)

    def stop(self) -> None:
        """Stop listening."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
