"""The composition root builds each object whole: the event log opens first, the runner and the
group commit are made from it, and the store is given them, not patched afterwards."""

from __future__ import annotations

from infrastructure.services import Services


def test_the_store_is_given_its_group_commit_and_the_one_event_log(services: Services) -> None:
    log = services.store.event_log

    assert services.committer is not None
    assert services.store.committer is services.committer
    assert services.store.factory is log.factory
    assert services.store.recorder is log.recorder
    assert services.store.mapper is log.mapper
