"""`GET /v1/regions`: the national division list, one level at a time, for region pickers."""

from __future__ import annotations

from collections import defaultdict
from functools import cache
from typing import Annotated

import msgspec
from litestar import get
from litestar.exceptions import NotFoundException
from litestar.params import QueryParameter

from infrastructure.ops.regions import FILES, Division, candidate_dirs, find_regions_dir
from infrastructure.ops.regions import national_regions as regions
from interface.http.contract import operation

ROOT = "000000"
Parent = Annotated[
    str,
    QueryParameter(
        name="parent",
        required=False,
        pattern=r"^[0-9]{6}$",
        description="A province or city code; default the whole country (its provinces).",
    ),
]


class DivisionOut(msgspec.Struct):
    """One division: its six-digit code, its name, and whether a venue may be in it."""

    code: str
    name: str
    venue_region: bool


class DivisionList(msgspec.Struct):
    """The divisions directly below `parent`."""

    parent: str
    regions: list[DivisionOut]


@cache
def _children() -> dict[str, list[str]]:
    """Each province's cities and each city's counties, by six-digit codes, in list order."""
    folder = find_regions_dir(candidate_dirs())
    provinces, cities, counties = (
        msgspec.json.decode((folder / name).read_bytes(), type=list[Division]) for name in FILES
    )
    below: dict[str, list[str]] = defaultdict(list)
    for p in provinces:
        below[ROOT].append(p.code.ljust(6, "0"))
    for c in cities:
        below[c.code[:2] + "0000"].append(c.code.ljust(6, "0"))
    for county in counties:
        below[county.code[:4] + "00"].append(county.code)
    return dict(below)


@get(
    "/v1/regions",
    sync_to_thread=False,
    **operation(
        "list_regions", "List regions", tag="regions", signed_in=False, problems=(400, 404)
    ),
)
def list_regions(parent: Parent = ROOT) -> DivisionList:
    """Anyone may read the national list (GB/T 2260): the provinces, or the cities of a
    province, or the counties of a city. A venue's region is a county (`venue_region`)."""
    codes = _children().get(parent)
    if codes is None:
        raise NotFoundException("no regions lie below this code")
    national = regions()
    return DivisionList(
        parent=parent,
        regions=[
            DivisionOut(
                code=c, name=national.name(c) or c, venue_region=national.is_venue_region(c)
            )
            for c in codes
        ],
    )


region_handlers = [list_regions]
