"""One example of every request body, as the API document shows it (each one decodes)."""

from __future__ import annotations

from typing import Any

from interface.http.case_schemas import (
    Approval,
    Closure,
    NewAgency,
    NewAuditor,
    NewCase,
    NewExposure,
    NewOfficer,
)
from interface.http.notice_schemas import NOTICE_EXAMPLES
from interface.http.schemas import (
    AssistedCheckIn,
    CheckInBody,
    CheckOutBody,
    NewMerchant,
    NewVenue,
    NewVisitor,
    SignIn,
    TillCheckOut,
    VenueEdit,
)

EXAMPLES: dict[type, dict[str, Any]] = {
    NewVisitor: {"name": "王小明", "phone": "+86 138 0013 8000", "dependents": ["王小红"]},
    CheckInBody: {"code": "Vq3Xc0mJb8kS2rT5yW7zA1dF4gH6jK9nP0", "party": ["王小红"]},
    CheckOutBody: {"visit_id": "0b8f8f5e-3c1a-4e7e-9a53-6f1f2c9d4e10"},
    NewMerchant: {"name": "老王餐饮", "contact_phone": "+86 139 0000 0000"},
    SignIn: {"token": "3q2-7wEXAMPLEtokenXk9dQ0bX4mJc8sT1vY6zR5nP2hL"},
    NewVenue: {
        "name": "老王面馆",
        "address": "北京市朝阳区建国路 1 号",
        "region": "110105",
        "category": "restaurant",
        "capacity": 40,
        "max_dwell_minutes": 120,
    },
    VenueEdit: {"name": "老王面馆 建国路店", "capacity": 60},
    AssistedCheckIn: {"name": "李奶奶", "phone": "+86 137 0000 0001"},
    TillCheckOut: {"visit_id": "0b8f8f5e-3c1a-4e7e-9a53-6f1f2c9d4e10"},
    NewAgency: {"name": "朝阳区疾控中心", "jurisdiction": ["110105"]},
    NewOfficer: {"name": "张医生", "role": "tracer"},
    NewAuditor: {"name": "审计员 A"},
    NewCase: {
        "index": {"phone": "+86 138 0013 8000"},
        "from": "2026-03-01T00:00:00+08:00",
        "to": "2026-03-14T00:00:00+08:00",
        "legal_basis": "传染病防治法 第十二条",
    },
    Approval: {"approve": True, "reason": "positive test on 2026-03-14"},
    Closure: {"reason": "all contacts reached"},
    NewExposure: {
        "case_id": "6a1d2c3b-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
        "venue_id": "1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9",
        "from": "2026-03-10T18:00:00+08:00",
        "to": "2026-03-10T20:00:00+08:00",
        "advice": "请自我健康监测 14 天。如有发热请就医 / Watch your health for 14 days",
    },
}

# Notices and risk levels (issue 19).
EXAMPLES.update(NOTICE_EXAMPLES)
