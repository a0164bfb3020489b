"""The sub-account audit log's one writer. Call it inside the transaction of the change it records."""

from __future__ import annotations

from typing import Any

from subaccounts.models import AuditEntry, SubAccount


def audit_record(*, subaccount: SubAccount | int | None, actor: str, action: str, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None) -> AuditEntry:
    subaccount_id = subaccount.pk if isinstance(subaccount, SubAccount) else subaccount
    return AuditEntry.objects.create(subaccount_id=subaccount_id, actor=actor, action=action, before=before or {},
                                     after=after or {})
