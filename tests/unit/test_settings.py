"""Settings whose defaults depend on the deployment."""

from __future__ import annotations

from infrastructure.settings import load_settings


def test_the_group_commit_wait_defaults_by_store_and_can_be_set() -> None:
    assert load_settings({}).group_commit_wait == 0.0005
    postgres = load_settings({"FANGXIN_DATABASE_URL": "postgresql://postgres@127.0.0.1/test"})
    assert postgres.group_commit_wait == 0.002
    assert load_settings({"FANGXIN_GROUP_COMMIT_WAIT_MS": "5"}).group_commit_wait == 0.005
