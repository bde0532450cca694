"""The casework rules (four eyes, approval, windows, closing, audit first, exposures), against the
embedded services and a clock the test moves."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

import pytest

from domain.accounts import AccountKind
from domain.case_reads import ContactErasedError
from domain.cases import (
    CaseAlreadyDecidedError,
    CaseClosedError,
    CaseNotApprovedError,
    CaseStatus,
    CaseWindowError,
    FourEyesError,
    NotListedContactError,
)
from domain.casework import Casework, ExposureOffTrajectoryError
from domain.errors import ForbiddenError, InvalidInputError
from domain.people import OfficerRole
from domain.ports import Principal
from domain.tracing import ContactRule
from infrastructure.services import Services
from tests.checkins import check_in
from tests.conftest import MovableClock


class Story:
    """An index person and a contact forty minutes together at a noodle shop in Beijing."""

    def __init__(self, services: Services, clock: MovableClock) -> None:
        self.services = services
        self.work: Casework = services.casework
        app = services.app
        agency = self.work.create_agency("北京疾控", ["110000"], None)
        self.tracer = self.officer(agency, OfficerRole.TRACER)
        self.supervisor = self.officer(agency, OfficerRole.SUPERVISOR)
        merchant = app.register_merchant("老王", "+8613900000000", None)
        venue_id = app.register_venue(
            merchant.id, "面馆", "1 Road", "110105", "restaurant", None, 180, None
        )
        self.venue_id = venue_id
        codes = app.codes_of(app.owned_venue(merchant.id, venue_id))
        self.index = app.register_visitor("王秀英", "+8613955550001", [], None).id
        self.contact = app.register_visitor("李雷", "+8613955550002", [], None).id
        self.start = clock.now()
        check_in(services, self.index, codes.code)
        check_in(services, self.contact, codes.code)
        clock.advance(timedelta(minutes=40))
        for person in (self.index, self.contact):
            app.check_out_by_code(person, codes.checkout_code)
        clock.advance(timedelta(minutes=10))
        self.clock = clock

    def officer(self, agency_id: UUID, role: OfficerRole) -> Principal:
        made = self.work.create_officer(agency_id, f"{role.value} 1", role, None)
        return Principal(role=role.value, id=made.id, agency_id=agency_id)

    def open_case(self, start: datetime | None = None) -> UUID:
        case = self.work.open_case(
            self.tracer,
            "+8613955550001",
            None,
            start or self.start - timedelta(hours=1),
            self.clock.now(),
            "confirmed by lab",
            None,
        )
        return case.id


ADVICE = "请自我健康监测 14 天"


@pytest.fixture
def story(services: Services, clock: MovableClock) -> Story:
    return Story(services, clock)


def test_a_case_is_read_only_once_another_officer_approved_it(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    with pytest.raises(CaseNotApprovedError):
        work.contacts(story.tracer, case_id, ContactRule(), 1)
    with pytest.raises(ForbiddenError):
        work.decide(story.tracer, case_id, True, "lab result seen")
    work.decide(story.supervisor, case_id, True, "lab result seen")
    with pytest.raises(CaseAlreadyDecidedError):
        work.decide(story.supervisor, case_id, False, "changed my mind")
    contacts = work.contacts(story.tracer, case_id, ContactRule(), 1)
    assert [c.visitor_id for c in contacts] == [story.contact]


def test_the_opener_cannot_approve_their_own_case(story: Story) -> None:
    # A supervisor cannot open a case, so the rule is checked on the aggregate's own terms.
    case = story.work.case(story.tracer, story.open_case())
    with pytest.raises(FourEyesError):
        case.decide(story.tracer.id, True, "mine", story.clock.now(), timedelta(days=14))


def test_every_read_is_on_the_audit_record_before_it_is_answered(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    before = len(story.services.audit.entries())
    work.trajectory(story.tracer, case_id)
    work.contacts(story.tracer, case_id, ContactRule(), 1)
    details = work.details(story.tracer, case_id, story.contact)
    assert details.phone == "+8613955550002"
    actions = [e.action for e in story.services.audit.entries()[before:]]
    assert actions == ["read trajectory", "read contacts", "reveal contact details"]


def test_details_only_of_listed_contacts_and_never_of_an_erased_one(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    with pytest.raises(NotListedContactError):
        work.details(story.tracer, case_id, story.contact)
    work.contacts(story.tracer, case_id, ContactRule(), 1)
    story.services.app.erase_visitor(story.contact)
    with pytest.raises(ContactErasedError):
        work.details(story.tracer, case_id, story.contact)


def test_a_closed_or_expired_case_is_read_no_more(story: Story) -> None:
    work = story.work
    closed, expiring = story.open_case(), story.open_case()
    for case_id in (closed, expiring):
        work.decide(story.supervisor, case_id, True, "lab result seen")
    work.close(story.tracer, closed, "done")
    with pytest.raises(CaseClosedError):
        work.trajectory(story.tracer, closed)
    story.clock.advance(work.policy.lifetime + timedelta(minutes=1))
    assert work.status(work.case(story.tracer, expiring)) is CaseStatus.EXPIRED
    with pytest.raises(CaseClosedError):
        work.contacts(story.tracer, expiring, ContactRule(), 1)


def test_a_case_window_cannot_reach_past_retention(story: Story) -> None:
    with pytest.raises(CaseWindowError):
        story.open_case(start=story.clock.now() - story.work.policy.retention - timedelta(days=1))


def test_an_exposure_lies_within_the_index_persons_visit(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    with pytest.raises(ExposureOffTrajectoryError):
        work.declare_exposure(
            story.tracer,
            case_id,
            story.venue_id,
            story.start - timedelta(hours=2),
            story.start - timedelta(hours=1),
            ADVICE,
        )
    notice = work.declare_exposure(
        story.tracer,
        case_id,
        story.venue_id,
        story.start,
        story.start + timedelta(minutes=40),
        ADVICE,
    )
    assert notice.notified == 1
    assert [e.exposure_id for e, _ in work.exposures_of(story.contact)] == [notice.id]


def test_an_exposure_window_copied_from_an_answer_to_the_second_fits_the_visit(
    story: Story,
) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    shown = story.start.replace(microsecond=0)  # how answers show the check-in
    notice = work.declare_exposure(
        story.tracer, case_id, story.venue_id, shown, shown + timedelta(minutes=40), ADVICE
    )
    assert notice.notified == 1


def test_the_index_person_never_sees_the_exposure_of_their_own_case(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    window = (story.start, story.start + timedelta(minutes=40))
    notice = work.declare_exposure(story.tracer, case_id, story.venue_id, *window, ADVICE)
    assert notice.notified == 1
    assert work.exposures_of(story.index) == []
    [(seen, _)] = work.exposures_of(story.contact)
    assert seen.advice == ADVICE


def test_an_exposure_without_advice_is_refused(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    window = (story.start, story.start + timedelta(minutes=40))
    with pytest.raises(InvalidInputError):
        work.declare_exposure(story.tracer, case_id, story.venue_id, *window, "  ")


def test_actions_are_named_for_what_happened(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    work.export(story.tracer, case_id, ContactRule(), 1, details=True)
    window = (story.start, story.start + timedelta(minutes=40))
    work.declare_exposure(story.tracer, case_id, story.venue_id, *window, ADVICE)
    entries = [e for e in story.services.audit.entries() if e.case_id == case_id]
    assert [e.action for e in entries] == [
        "open case",
        "approve case",
        "export",
        "reveal contact details",
        "declare exposure",
    ]
    assert entries[3].subject == str(story.contact)


def test_an_export_with_details_reveals_each_contact_after_recording_it(story: Story) -> None:
    work, case_id = story.work, story.open_case()
    work.decide(story.supervisor, case_id, True, "lab result seen")
    plain = work.export(story.tracer, case_id, ContactRule(), 1, details=False)
    assert plain.details == {}
    story.services.app.erase_visitor(story.contact)
    # Erased after it was listed: the export names nobody, and says so.
    exported = work.export(story.tracer, case_id, ContactRule(), 1, details=True)
    assert all(found is None for found in exported.details.values())


def test_the_case_list_is_the_agencys_own_newest_first_a_page_at_a_time(story: Story) -> None:
    work = story.work
    opened = []
    for _ in range(3):
        opened.append(story.open_case())
        story.clock.advance(timedelta(seconds=1))
    first, second, third = opened
    work.decide(story.supervisor, second, True, "lab result seen")
    page = work.cases_of(story.supervisor, None, 2, None)
    assert [c.case.id for c in page.cases] == [third, second]
    assert page.cursor is not None
    rest = work.cases_of(story.supervisor, None, 2, page.cursor)
    assert [c.case.id for c in rest.cases] == [first]
    assert rest.cursor is None
    queue = work.cases_of(story.supervisor, CaseStatus.PENDING, 50, None)
    assert [c.case.id for c in queue.cases] == [third, first]
    other_agency = work.create_agency("上海疾控", ["310000"], None)
    stranger = story.officer(other_agency, OfficerRole.TRACER)
    assert work.cases_of(stranger, None, 50, None).cases == []
    with pytest.raises(InvalidInputError):
        work.cases_of(story.tracer, None, 50, "not-a-cursor")


def test_a_rotated_or_closed_account_loses_its_token(story: Story) -> None:
    work, services = story.work, story.services
    made = work.create_officer(
        work.agencies()[0].agency.agency_id, "临时", OfficerRole.TRACER, None
    )
    token_hash = services.app.ports.credentials.token_hash
    me = services.directory.principal(token_hash(made.token))
    assert me is not None
    new = work.rotate_token(me, AccountKind.OFFICER, made.id)
    assert services.directory.principal(token_hash(made.token)) is None
    assert services.directory.principal(token_hash(new)) == me
    with pytest.raises(ForbiddenError):
        work.rotate_token(story.tracer, AccountKind.OFFICER, made.id)
    work.deactivate(AccountKind.OFFICER, made.id)
    assert services.directory.principal(token_hash(new)) is None
    listed = {e.id: e.active for e in work.officers_of(me.agency_id or made.id)}
    assert listed[made.id] is False
    actions = [e.action for e in services.audit.entries()[-2:]]
    assert actions == ["rotate officer token", "deactivate officer"]
