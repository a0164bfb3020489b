"""Rating after each usage pull, kept apart from the pull's code: when `phone.tasks.usage_pull_subaccounts` (or
`usage_pull_subaccount`) succeeds, rate the sub-accounts it read (the signal fires in the worker, still inside
the task's agency schema)."""

from __future__ import annotations

from typing import Any

from celery.signals import task_success

PULL_TASK = "phone.tasks.usage_pull_subaccount"
BATCH_PULL_TASK = "phone.tasks.usage_pull_subaccounts"  # returns [[provider id, outcome], ...]


@task_success.connect
def _rate_after_pull(sender: Any = None, result: Any = None, **_: Any) -> None:
    name = getattr(sender, "name", None)
    if name == BATCH_PULL_TASK:
        provider_ids = [provider_id for provider_id, outcome in result or [] if outcome != "failed"]
    elif name == PULL_TASK and result != "failed":
        args = list(getattr(sender.request, "args", None) or [])
        provider_id = args[0] if args else (sender.request.kwargs or {}).get("provider_id")
        provider_ids = [] if provider_id is None else [provider_id]
    else:
        return
    from phone.models import SubAccountProvider
    from wallets.tasks import wallet_rate_subaccount

    for subaccount_id in SubAccountProvider.objects.filter(pk__in=provider_ids).values_list("subaccount_id", flat=True):
        wallet_rate_subaccount.delay(subaccount_id)
