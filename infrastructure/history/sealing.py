"""What an on-disk history row holds instead of the ids a copy of its database could link.

A visit row finds its person and guardian by keyed pseudonyms (an HMAC under a key the
database never holds, `Pseudonyms`), and gives the reader their ids back from a small sealed
column (AES-GCM-SIV under another such key, `Seals`, bound to the visit's id), so a copy of the
database cannot link a row to the log's visitor aggregates, nor one person's rows to their
registration. The visit's and venue's ids stay plain: a visit id is already a plain originator
id in the log (and says nothing of who), and venues are public places. An exposure's advice
and exempt persons are sealed the same way.

Both keys are the key store's service keys (`history-names`, `history-records`), as the Redis
records' are, so the seal and pseudonyms survive restarts and are the same in every worker.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from domain.ports import ExposureView
from infrastructure.keys.keystore import KeyStore
from infrastructure.readmodels.records import Pseudonyms, Seals

NAMES_KEY = "history-names"
RECORDS_KEY = "history-records"


class _Exposure(msgspec.Struct, array_like=True):
    advice: str
    exempt: list[UUID]


class RowKeys:
    """Pseudonyms and seals of history rows."""

    def __init__(self, pseudonyms: Pseudonyms, seals: Seals) -> None:
        self._pseudonyms = pseudonyms
        self._seals = seals
        self._exposure_decoder = msgspec.msgpack.Decoder(_Exposure)

    @classmethod
    def of(cls, keys: KeyStore) -> RowKeys:
        """The service's history keys."""
        return cls(Pseudonyms(keys.service_key(NAMES_KEY)), Seals(keys.service_key(RECORDS_KEY)))

    def person(self, ident: UUID) -> bytes:
        """The keyed pseudonym of a visitor (as person or guardian), 16 bytes."""
        return bytes.fromhex(self._pseudonyms.of(ident))

    def seal_people(self, visit_id: UUID, visitor_id: UUID, guardian_id: UUID) -> bytes:
        """The visitor's and guardian's ids, sealed for this visit only."""
        return self._seals.seal(f"history:visit:{visit_id}", visitor_id.bytes + guardian_id.bytes)

    def open_people(self, visit_id: UUID, sealed: bytes) -> tuple[UUID, UUID] | None:
        """(visitor id, guardian id) of a visit, or None (logged) when the seal does not match."""
        plain = self._seals.open(f"history:visit:{visit_id}", bytes(sealed), "history visit")
        if plain is None:
            return None
        return UUID(bytes=plain[:16]), UUID(bytes=plain[16:32])

    def open_visitor(self, visit_id: UUID, sealed: bytes) -> UUID | None:
        """The visitor's id alone (what a stay needs), or None (logged) as `open_people`."""
        plain = self._seals.open(f"history:visit:{visit_id}", bytes(sealed), "history visit")
        return None if plain is None else UUID(bytes=plain[:16])

    def seal_exposure(self, exposure: ExposureView) -> bytes:
        """An exposure's advice and exempt persons, sealed for this exposure only."""
        plain = msgspec.msgpack.encode(_Exposure(exposure.advice, list(exposure.exempt)))
        return self._seals.seal(f"history:exposure:{exposure.exposure_id}", plain)

    def open_exposure(
        self,
        exposure_id: UUID,
        venue_id: UUID,
        times: tuple[datetime, datetime, datetime],
        sealed: bytes,
    ) -> ExposureView | None:
        """The exposure a row holds, or None (logged) when its seal does not match."""
        plain = self._seals.open(f"history:exposure:{exposure_id}", bytes(sealed), "exposure")
        if plain is None:
            return None
        inner = self._exposure_decoder.decode(plain)
        start, end, declared_at = times
        return ExposureView(
            exposure_id=exposure_id,
            venue_id=venue_id,
            start=start,
            end=end,
            declared_at=declared_at,
            advice=inner.advice,
            exempt=tuple(inner.exempt),
        )
