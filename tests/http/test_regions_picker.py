"""GET /v1/regions: the national list one level at a time, for the console's region picker."""

from __future__ import annotations

from typing import Any

from litestar.testing import TestClient


def test_the_picker_walks_province_city_county(client: TestClient[Any]) -> None:
    provinces = client.get("/v1/regions")
    assert provinces.status_code == 200, provinces.text
    codes = {r["code"]: r for r in provinces.json()["regions"]}
    assert codes["110000"]["name"] == "北京市"
    assert codes["110000"]["venue_region"] is False
    cities = client.get("/v1/regions?parent=310000").json()["regions"]
    assert {"code": "310100", "name": "上海市市辖区", "venue_region": False} in cities
    counties = client.get("/v1/regions?parent=310100").json()["regions"]
    assert {"code": "310101", "name": "黄浦区", "venue_region": True} in counties
    # A city without counties is its own county-level division.
    assert client.get("/v1/regions?parent=441900").json()["regions"][0]["code"] == "441900"


def test_a_bad_or_unknown_parent_is_refused(client: TestClient[Any]) -> None:
    bad = client.get("/v1/regions?parent=abc")
    unknown = client.get("/v1/regions?parent=999999")
    assert bad.status_code == 400
    assert unknown.status_code == 404
    assert unknown.headers["content-type"].startswith("application/problem+json")
