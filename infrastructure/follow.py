"""What `fangxin follow` runs: production's history follower, and only what it needs.

The keys, the log's recorder and mapper, the PostgreSQL history and the follower's thread; of
Redis only the workers' feed of destroyed keys, so that a key destroyed by an erasure in any
worker leaves this process's memory too (as it leaves every worker's). No read model, runner,
group commit or audit trail: the process writes nothing but the history (ADR 0014).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from infrastructure.bootstrap import history_follower, open_keys, production_history
from infrastructure.eventstore.environment import event_store_env
from infrastructure.eventstore.mapper import ScopedCipherMapper
from infrastructure.eventstore.store import EventLog
from infrastructure.files import close_folder
from infrastructure.projections.history_follower import HistoryFollower
from infrastructure.readmodels.records import Pseudonyms, Seals
from infrastructure.readmodels.redis.cluster import close_client, open_client
from infrastructure.readmodels.redis.feed import RedisFeed
from infrastructure.readmodels.redis.records import RedisRecords
from infrastructure.settings import Settings


@dataclass
class Following:
    """The follower of a `fangxin follow` process; `close()` stops it and releases the rest."""

    follower: HistoryFollower
    _closers: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        """Stop after the current catch-up, then close the stores."""
        self.follower.stop()
        for closer in self._closers:
            closer()


def build_following(settings: Settings) -> Following:
    """The production deployment's history follower (its tables made by `fangxin migrate`)."""
    if not settings.is_production:
        raise ValueError("the history follows in a process of its own only in production")
    close_folder(Path(settings.data_dir))
    keys = open_keys(settings)
    mapper = ScopedCipherMapper(keys)
    keys.on_destroy.append(mapper.forget)
    log = EventLog(event_store_env(settings, create_tables=False), mapper)
    history = production_history(log, keys, settings, create_tables=False)
    follower = history_follower(log, keys, settings, history, here=True)
    client = open_client(settings.redis_url, settings.redis_cluster)
    # Named and sealed as the workers' feed is, to hear the same channel.
    records = RedisRecords(
        settings.redis_prefix,
        Pseudonyms(keys.service_key("redis-names")),
        Seals(keys.service_key("redis-records")),
    )
    feed = RedisFeed(client, records)
    feed.on_shredded(keys.forget)
    feed.on_shredded(mapper.forget)
    for forget_all in (keys.forget_all, mapper.forget_all):
        feed.on_subscribed(forget_all)
    feed.start()
    return Following(
        follower, [feed.stop, lambda: close_client(client), log.factory.close, keys.close]
    )
