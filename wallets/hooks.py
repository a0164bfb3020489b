"""Rating after each usage pull, kept apart from the pull's code: when `phone.tasks.usage_pull_subaccount`
succeeds, rate that sub-account (the signal fires in the worker, still inside the task's agency schema)."""

from __future__ import annotations

from typing import Any

from celery.signals import task_success

PULL_TASK = "phone.tasks.usage_pull_subaccount"


@task_success.connect
def _rate_after_pull(sender: Any = None, result: Any = None, **_: Any) -> None:
    if getattr(sender, "name", None) != PULL_TASK or result == "failed":
        return
    from phone.models import SubAccountProvider
    from wallets.tasks import wallet_rate_subaccount

    args = list(getattr(sender.request, "args", None) or [])
    provider_id = args[0] if args else (sender.request.kwargs or {}).get("provider_id")
    if provider_id is None:
        return
    subaccount_id = SubAccountProvider.objects.filter(pk=provider_id).values_list("subaccount_id", flat=True).first()
    if subaccount_id is not None:
        wallet_rate_subaccount.delay(subaccount_id)
