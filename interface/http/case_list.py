"""An agency's list of cases over HTTP: a tracer's cases, a supervisor's queue (`pending`)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from litestar import Request, get
from litestar.di import NamedDependency
from litestar.params import QueryParameter

from domain.cases import CaseStatus
from domain.ports import Principal
from interface.http.auth import services_of
from interface.http.case_schemas import CaseList
from interface.http.cases import OFFICER, TAG, case_out
from interface.http.contract import operation

Status = Annotated[
    Literal["pending", "approved", "rejected", "closed", "expired"] | None,
    QueryParameter(
        required=False,
        description="Only cases that stand so now; `pending` is a supervisor's queue.",
    ),
]
Limit = Annotated[int, QueryParameter(ge=1, le=200, description="Cases per page, 1 to 200.")]
Cursor = Annotated[
    str | None,
    QueryParameter(
        required=False,
        max_length=200,
        description="The `cursor` of the previous page, for the next one.",
    ),
]


@get(
    "/v1/cases",
    dependencies=OFFICER,
    sync_to_thread=True,
    **operation("list_cases", "List the agency's cases", tag=TAG, problems=(400,)),
)
def list_cases(
    request: Request[Any, Any, Any],
    officer: NamedDependency[Principal],
    status: Status = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> CaseList:
    """A tracer or supervisor lists their own agency's cases, newest first (by opening), a
    page of `limit` at a time: what each asks for (window, `index_by`, how many people,
    legal basis) and where it stands, never who the index person is. The answer's `cursor`
    asks for the next page; null when this was the last. Reads no case data."""
    casework = services_of(request).casework
    wanted = None if status is None else CaseStatus(status)
    page = casework.cases_of(officer, wanted, limit, cursor)
    return CaseList(cases=[case_out(c.case, c.status) for c in page.cases], cursor=page.cursor)


case_list_handlers = [list_cases]
