"""A merchant replaces a leaked or shared token: the new one is shown once, the old one stops."""

from __future__ import annotations

from uuid import UUID

from domain.errors import NotFoundError
from domain.people import Merchant
from domain.ports import NotStoredError
from domain.service import Service


def rotate_merchant_token(service: Service, merchant_id: UUID) -> str:
    """The merchant's new token; every worker refuses the old one once this returns."""
    with service.store.exclusive(merchant_id):
        try:
            merchant: Merchant = service.store.get(merchant_id)
        except NotStoredError:
            raise NotFoundError("no such merchant") from None
        token, token_hash = service.ports.credentials.new_token()
        merchant.rotate_token(token_hash)
        service.store.commit(merchant)
    return token
