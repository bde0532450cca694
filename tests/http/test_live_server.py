"""The real server process: server-sent exposures, SIGTERM, a restart on the same data."""

from __future__ import annotations

import json
import queue
import signal
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

from tests.live import SERVE, Server, free_port, launched, running_server

ADMIN = "live-admin-token-0123456789abcdef"


def post(server: Server, path: str, body: object, token: str | None = None) -> dict[str, str]:
    with server.client(token) as client:
        response = client.post(path, json=body)
    assert response.status_code in (200, 201), response.text
    answer: dict[str, str] = response.json()
    return answer


def merchant_venue(server: Server, name: str, phone: str) -> dict[str, str]:
    """A venue of a new merchant's."""
    merchant = post(server, "/v1/merchants", {"name": "M", "contact_phone": phone})
    body = {"name": name, "address": "1 Rd", "region": "110105", "category": "food"}
    return post(server, "/v1/venues", body, merchant["token"])


def listen(server: Server, token: str, events: queue.Queue[tuple[str, str]]) -> None:
    with (
        server.client(token) as client,
        client.stream("GET", "/v1/me/events", timeout=httpx.Timeout(30, read=30)) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        kind = ""
        for line in stream.iter_lines():
            if line.startswith(": connected"):
                events.put(("connected", ""))
            elif line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "exposure":
                events.put((kind, line.split(":", 1)[1].strip()))
                return


def test_a_connected_visitor_hears_of_a_matching_exposure(tmp_path: Path) -> None:
    with running_server(tmp_path / "data", FANGXIN_ADMIN_TOKEN=ADMIN) as server:
        agency = post(server, "/v1/agencies", {"name": "A", "jurisdiction": ["110000"]}, ADMIN)
        officers = f"/v1/agencies/{agency['agency_id']}/officers"
        tracer = post(server, officers, {"name": "T", "role": "tracer"}, ADMIN)
        supervisor = post(server, officers, {"name": "S", "role": "supervisor"}, ADMIN)
        venue = merchant_venue(server, "老王面馆", "+8613900000000")
        index = post(server, "/v1/visitors", {"name": "I", "phone": "+8613900000001"})
        exposed = post(server, "/v1/visitors", {"name": "E", "phone": "+8613900000002"})
        visits = [
            post(server, "/v1/check-ins", {"code": venue["code"]}, person["token"])
            for person in (index, exposed)
        ]
        events: queue.Queue[tuple[str, str]] = queue.Queue()
        listener = threading.Thread(target=listen, args=(server, exposed["token"], events))
        listener.start()
        assert events.get(timeout=10) == ("connected", "")
        now = datetime.now(UTC)
        case = post(
            server,
            "/v1/cases",
            {
                "index": {"phone": "+8613900000001"},
                "from": (now - timedelta(hours=1)).isoformat(),
                "to": now.isoformat(),
                "legal_basis": "confirmed by lab",
            },
            tracer["token"],
        )
        post(
            server, f"/v1/cases/{case['case_id']}/approval", {"approve": True}, supervisor["token"]
        )
        declared = post(
            server,
            "/v1/exposures",
            {
                "case_id": case["case_id"],
                "venue_id": venue["venue_id"],
                "from": visits[0]["checked_in_at"],
                "to": (now + timedelta(minutes=5)).isoformat(),
                "advice": "请居家观察",
            },
            tracer["token"],
        )
        assert declared["notified"] == 1  # the index person is not alerted of their own case
        kind, data = events.get(timeout=10)
        listener.join(timeout=10)
        assert kind == "exposure"
        assert json.loads(data)["venue"]["name"] == "老王面馆"
        assert json.loads(data)["advice"] == "请居家观察"


def test_sigterm_stops_the_server_cleanly_and_a_restart_finds_everything(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with running_server(data) as server:
        visitor = post(server, "/v1/visitors", {"name": "V", "phone": "+8613900000003"})
        venue = merchant_venue(server, "Shop", "+8613900000004")
        post(server, "/v1/check-ins", {"code": venue["code"]}, visitor["token"])

    port = free_port()
    # Only the settings a service manager would give: no FANGXIN_LOG_LEVEL, a bare PATH.
    env = {
        "FANGXIN_DATA_DIR": str(data),
        "FANGXIN_PORT": str(port),
        "FANGXIN_HOST": "127.0.0.1",
        "PATH": "/usr/bin:/bin",
    }
    log_path = tmp_path / "second.log"
    with launched(SERVE, port, env, log_path, clean_exit=False) as second:
        with second.client(visitor["token"]) as client:
            visits = client.get("/v1/me/visits").json()["visits"]
        second.process.send_signal(signal.SIGTERM)
        # Uvicorn shuts down gracefully, then re-raises the signal, as a service manager expects.
        assert second.process.wait(timeout=20) in (0, -signal.SIGTERM)
    assert [v["venue"]["name"] for v in visits] == ["Shop"]
    log = log_path.read_text()
    assert "listening on http://127.0.0.1" in log
    assert "Application shutdown complete" in log
