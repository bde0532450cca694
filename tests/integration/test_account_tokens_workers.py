"""Two workers of one production deployment: a rotated or deactivated officer's token stops on
both at once, though each worker keeps tokens it has checked in a cache for a minute."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from tests.integration.test_production import migrate
from tests.live import Server, running_server

# Fresh connections per round: the kernel spreads them over both workers' sockets.
ROUNDS = 40


def status(server: Server, method: str, path: str, token: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    answer = httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=10)
    return answer.status_code


def both_workers_up(server: Server, admin: str) -> None:
    pids: set[str] = set()
    for _ in range(200):
        metrics = httpx.get(
            f"{server.base_url}/metrics",
            headers={"Authorization": f"Bearer {admin}"},
            timeout=10,
        )
        pids |= set(re.findall(r'fangxin_group_commit_batches_total\{pid="(\d+)"', metrics.text))
        if len(pids) == 2:
            return
    raise AssertionError(server.log())


def test_a_rotated_then_deactivated_token_stops_on_every_worker(
    production: dict[str, str],
) -> None:
    env = {f"FANGXIN_{k.upper()}": v for k, v in production.items() if k != "data_dir"}
    admin = production["admin_token"]
    migrate(production)
    with running_server(Path(production["data_dir"]), FANGXIN_WORKERS="2", **env) as server:
        both_workers_up(server, admin)
        with server.client(admin) as client:
            agency = client.post("/v1/agencies", json={"name": "A", "jurisdiction": ["110000"]})
            officers = f"/v1/agencies/{agency.json()['agency_id']}/officers"
            tracer = client.post(officers, json={"name": "T", "role": "tracer"}).json()
        # Both workers check (and cache) the token.
        for _ in range(ROUNDS):
            assert status(server, "GET", "/v1/cases", tracer["token"]) == 200
        rotations = f"/v1/officers/{tracer['officer_id']}/token-rotations"
        with server.client(admin) as client:
            rotated = client.post(rotations)
        assert rotated.status_code == 201, rotated.text
        new = rotated.json()["token"]
        for _ in range(ROUNDS):
            assert status(server, "GET", "/v1/cases", tracer["token"]) == 401
            assert status(server, "GET", "/v1/cases", new) == 200
        with server.client(admin) as client:
            assert client.delete(f"/v1/officers/{tracer['officer_id']}").status_code == 204
        for _ in range(ROUNDS):
            assert status(server, "GET", "/v1/cases", new) == 401
