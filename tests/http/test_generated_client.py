"""A Python client generated from `/schema/openapi.json` by openapi-python-client (pinned)
walks one story against the real server: if the contract breaks, this stops compiling or
parsing, as it would for anyone who generates a client from it."""

from __future__ import annotations

import importlib
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.live import Server, deployed_server

# How a client developer would generate: no formatter run, binary answers read as bytes.
CONFIG = """\
package_name_override: {package}
post_hooks: []
content_type_overrides:
  image/png: application/octet-stream
  image/svg+xml: application/octet-stream
  text/event-stream: text/plain
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with deployed_server(tmp_path_factory.mktemp("client") / "data") as running:
        yield running


def generated(server: Server, folder: Path) -> str:
    """Generate a client package into `folder`; its import name."""
    package = f"fangxin_client_{uuid.uuid4().hex[:8]}"
    document = httpx.get(f"{server.base_url}/schema/openapi.json", timeout=10)
    assert document.status_code == 200
    (folder / "openapi.json").write_bytes(document.content)
    (folder / "config.yml").write_text(CONFIG.format(package=package))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(folder / "openapi.json"),
            "--config",
            str(folder / "config.yml"),
            "--meta",
            "none",
            "--output-path",
            str(folder / package),
            "--fail-on-warning",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return package


@pytest.fixture(scope="module")
def client_package(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, ModuleType]]:
    folder = tmp_path_factory.mktemp("generated")
    package = generated(server, folder)
    sys.path.insert(0, str(folder))
    try:
        names = [
            "",
            ".models",
            ".api.visitors.register_visitor",
            ".api.visitors.check_in",
            ".api.visitors.check_out",
            ".api.merchants.register_merchant",
            ".api.merchants.register_venue",
            ".api.merchants.venue_stats",
        ]
        yield {
            name.rsplit(".", 1)[-1] or "client": importlib.import_module(package + name)
            for name in names
        }
    finally:
        sys.path.remove(str(folder))


class Clients:
    """The generated package's clients for one test, closed at its end."""

    def __init__(self, package: dict[str, Any], base_url: str) -> None:
        self.package = package
        self.base_url = base_url
        self.stack = ExitStack()

    def anyone(self) -> Any:
        made = self.package["client"].Client(
            base_url=self.base_url, raise_on_unexpected_status=True
        )
        return self.stack.enter_context(made)

    def bearing(self, token: str) -> Any:
        made = self.package["client"].AuthenticatedClient(base_url=self.base_url, token=token)
        return self.stack.enter_context(made)


@pytest.fixture
def clients(server: Server, client_package: dict[str, Any]) -> Iterator[Clients]:
    made = Clients(client_package, server.base_url)
    with made.stack:
        yield made


def test_a_generated_client_registers_checks_in_and_out_and_reads_stats(
    client_package: dict[str, Any], clients: Clients
) -> None:
    c = client_package
    models = c["models"]
    anyone = clients.anyone()

    # given a shopper and a merchant registered through the generated client
    shopper = c["register_visitor"].sync(
        client=anyone,
        body=models.NewVisitor(name="王小明", phone="+86 138 0013 8000"),
        idempotency_key=str(uuid.uuid4()),
    )
    merchant = c["register_merchant"].sync(
        client=anyone, body=models.NewMerchant(name="老王餐饮", contact_phone="+86 139 0000 0000")
    )
    assert isinstance(shopper, models.VisitorCreated)
    assert isinstance(merchant, models.MerchantCreated)
    as_merchant, as_shopper = clients.bearing(merchant.token), clients.bearing(shopper.token)

    # when the merchant registers a venue, and the shopper checks in and out there
    venue = c["register_venue"].sync(
        client=as_merchant,
        body=models.NewVenue(
            name="老王面馆", address="建国路 1 号", region="110105", category="restaurant"
        ),
    )
    assert isinstance(venue, models.VenueOut)
    visit = c["check_in"].sync(
        client=as_shopper,
        body=models.CheckInBody(code=venue.code),
        idempotency_key=str(uuid.uuid4()),
    )
    assert isinstance(visit, models.CheckInOut)
    closed = c["check_out"].sync(
        client=as_shopper, body=models.CheckOutBody(visit_id=visit.visit_id)
    )
    stats = c["venue_stats"].sync(
        client=as_merchant, venue_id=venue.venue_id, bucket=models.Bucket.DAY
    )

    # then every answer parses into the documented models
    assert visit.venue.name == "老王面馆"
    assert isinstance(closed, models.CheckOutOut)
    assert closed.visit_id == visit.visit_id
    assert isinstance(closed.dwell_seconds, int)
    assert isinstance(stats, models.StatsOut)
    assert stats.totals.suppressed  # one visitor is below the k-anonymity threshold


def test_a_generated_client_reads_a_refusal_as_a_problem_naming_the_field(
    client_package: dict[str, Any], clients: Clients
) -> None:
    c = client_package
    models = c["models"]
    anyone = clients.anyone()
    merchant = c["register_merchant"].sync(
        client=anyone, body=models.NewMerchant(name="M", contact_phone="+86 139 0000 0001")
    )
    as_merchant = clients.bearing(merchant.token)
    refused = c["register_venue"].sync(
        client=as_merchant,
        body=models.NewVenue(name="V", address="A", region="11010", category="food"),
    )
    assert isinstance(refused, models.Problem)
    assert refused.status == 400
    assert [e.field for e in refused.errors] == ["region"]
