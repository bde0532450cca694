"""docker-compose.yml, the Dockerfile and `make run-prod` describe the same deployment."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from infrastructure.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, dict[str, object]]:
    services: dict[str, dict[str, object]] = yaml.safe_load(
        (ROOT / "docker-compose.yml").read_text()
    )["services"]
    return services


def test_every_variable_the_compose_file_sets_is_a_setting() -> None:
    for name in ("migrate", "app"):
        environment = compose()[name]["environment"]
        assert isinstance(environment, dict)
        for variable in environment:
            assert variable.startswith("FANGXIN_")
            assert variable.removeprefix("FANGXIN_").lower() in Settings.__struct_fields__


def test_compose_and_make_run_prod_migrate_once_then_serve_on_postgres_and_redis() -> None:
    services = compose()
    assert services["migrate"]["command"] == ["fangxin", "migrate"]
    environment = services["app"]["environment"]
    assert isinstance(environment, dict)
    assert str(environment["FANGXIN_DATABASE_URL"]).startswith("postgresql://")
    assert str(environment["FANGXIN_REDIS_URL"]).startswith("redis://")
    assert "FANGXIN_WORKERS" in environment
    assert 'CMD ["fangxin", "serve"]' in (ROOT / "Dockerfile").read_text()
    makefile = (ROOT / "Makefile").read_text()
    recipe = re.search(r"^run-prod:.*\n((?:\t.*\n)+)", makefile, re.MULTILINE)
    assert recipe is not None
    steps = recipe.group(1)
    assert steps.index("fangxin migrate") < steps.index("fangxin serve")
    for variable in ("FANGXIN_DATABASE_URL", "FANGXIN_REDIS_URL", "FANGXIN_WORKERS"):
        assert variable in makefile


def test_compose_runs_redis_with_a_password_that_the_app_connects_with() -> None:
    services = compose()
    command = services["redis"]["command"]
    assert isinstance(command, list)
    password = command[command.index("--requirepass") + 1]
    assert password.startswith("${REDIS_PASSWORD:?")
    for name in ("migrate", "app"):
        environment = services[name]["environment"]
        assert isinstance(environment, dict)
        assert str(environment["FANGXIN_REDIS_URL"]).startswith("redis://:${REDIS_PASSWORD}@redis:")
