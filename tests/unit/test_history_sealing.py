"""A history row's sealed people: a stay opens its visitor alone, under the same seal."""

from __future__ import annotations

import uuid

from infrastructure.history.sealing import RowKeys
from infrastructure.readmodels.records import Pseudonyms, Seals

KEYS = RowKeys(Pseudonyms(b"n" * 32), Seals(b"r" * 32))


def test_a_stay_opens_the_visitor_a_visit_row_sealed() -> None:
    visit, visitor, guardian = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sealed = KEYS.seal_people(visit, visitor, guardian)

    assert KEYS.open_visitor(visit, sealed) == visitor
    assert KEYS.open_people(visit, sealed) == (visitor, guardian)


def test_a_seal_moved_to_another_visit_or_altered_opens_no_visitor() -> None:
    visit = uuid.uuid4()
    sealed = KEYS.seal_people(visit, uuid.uuid4(), uuid.uuid4())

    assert KEYS.open_visitor(uuid.uuid4(), sealed) is None
    assert KEYS.open_visitor(visit, sealed[:-1] + bytes([sealed[-1] ^ 1])) is None
