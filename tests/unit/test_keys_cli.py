"""`fangxin keys` in the embedded deployment: a new master key version, the rotation, and the
retirement of the old version, while the service runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from uuid import UUID

import pytest

from domain.people import Visitor
from infrastructure.bootstrap import build_services
from infrastructure.keys import keystore
from infrastructure.keys.masterkeys import MasterKeys
from infrastructure.services import Services
from infrastructure.settings import Settings, load_settings
from interface.cli import main

ADMIN_TOKEN = "keys-cli-admin-token-0123456789abcdef"


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("FANGXIN_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FANGXIN_ADMIN_TOKEN", ADMIN_TOKEN)
    # The running service reads a replaced master key file at once, not within a second.
    monkeypatch.setattr(keystore, "FOLLOW_SECONDS", 0.0)
    return load_settings({}, data_dir=str(tmp_path / "data"), admin_token=ADMIN_TOKEN)


@pytest.fixture
def running(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    yield services
    services.close()


def master_file(settings: Settings) -> MasterKeys:
    return MasterKeys.parse((settings.data_path / "master.key").read_text())


def register(services: Services, name: str) -> UUID:
    return services.app.register_visitor(name, "+8613912345678", [], None).id


def read(services: Services, visitor_id: UUID) -> Visitor:
    services.keys.forget_all()  # read from the key store, not from memory
    services.store.mapper.forget_all()  # type: ignore[attr-defined]
    visitor: Visitor = services.store.repository.get(visitor_id)
    return visitor


def test_the_master_key_rotates_and_retires_while_the_embedded_service_runs(
    settings: Settings, running: Services, capsys: pytest.CaptureFixture[str]
) -> None:
    before, erased = register(running, "王秀英"), register(running, "张伟")
    running.app.erase_visitor(erased)

    assert main(["keys", "new-master"]) == 0
    during = register(running, "李娜")
    assert main(["keys", "rotate-master"]) == 0
    assert main(["keys", "retire-master"]) == 0
    after = register(running, "刘洋")

    assert sorted(master_file(settings).keys) == [2]
    assert (settings.data_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert running.keys.versions() == {2: sum(running.keys.versions().values())}
    assert [read(running, v).name for v in (before, during, after)] == ["王秀英", "李娜", "刘洋"]
    restarted = build_services(settings)
    try:
        assert [read(restarted, v).name for v in (before, during, after)] == [
            "王秀英",
            "李娜",
            "刘洋",
        ]
        assert read(restarted, erased).forgotten
        actions = [entry.action for entry in restarted.audit.entries()]
    finally:
        restarted.close()
    assert actions[-3:] == [
        "add master key version",
        "rotate master key",
        "retire master key version",
    ]
    assert "rotate-master [" in capsys.readouterr().err


def test_a_version_that_still_wraps_keys_is_not_retired(
    settings: Settings, running: Services
) -> None:
    register(running, "王秀英")
    assert main(["keys", "new-master"]) == 0

    assert main(["keys", "retire-master", "1"]) == 1

    assert sorted(master_file(settings).keys) == [1, 2]
    assert "retire master key version" not in [e.action for e in running.audit.entries()]


def test_the_current_version_is_never_retired(settings: Settings, running: Services) -> None:
    assert main(["keys", "retire-master", "1"]) == 2

    assert sorted(master_file(settings).keys) == [1]


def test_with_the_master_key_configured_the_commands_print_the_new_configuration(
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configured = MasterKeys({1: b"o" * 32}, 1).render()
    monkeypatch.setenv("FANGXIN_MASTER_KEY", configured)
    assert main(["keys", "new-master"]) == 0
    renewed = capsys.readouterr().out.strip()
    monkeypatch.setenv("FANGXIN_MASTER_KEY", renewed)
    assert main(["keys", "rotate-master"]) == 0
    capsys.readouterr()

    assert main(["keys", "retire-master"]) == 0

    retired = MasterKeys.parse(capsys.readouterr().out.strip())
    assert retired.keys == {2: MasterKeys.parse(renewed).keys[2]}
    assert not (settings.data_path / "master.key").exists()
