"""The one place wallet rows are locked. Several wallets are always locked in primary-key order (no deadlocks);
a charge is locked after its wallet."""

from __future__ import annotations

from collections.abc import Iterable

from wallets.models import Charge, Wallet


def wallet_lock(*, wallet_id: int) -> Wallet:
    return Wallet.objects.select_for_update(of=("self",)).select_related("subaccount").get(pk=wallet_id)


def wallets_lock(*, wallet_ids: Iterable[int]) -> list[Wallet]:
    return list(Wallet.objects.select_for_update(of=("self",)).filter(pk__in=list(wallet_ids)).order_by("pk"))


def charge_lock(*, charge_id: int) -> tuple[Wallet, Charge]:
    """The charge's wallet, then the charge (the order every writer uses)."""
    wallet_id = Charge.objects.values_list("wallet_id", flat=True).get(pk=charge_id)
    wallet = wallet_lock(wallet_id=wallet_id)
    return wallet, Charge.objects.select_for_update().get(pk=charge_id)


class charge_call_guard:  # noqa: N801 — used as a context manager
    """A session-level advisory lock on one charge while its Stripe call is made, so the reconciler never
    decides a charge "never reached Stripe" while a worker is calling Stripe for it. Freed when the
    connection dies, so a killed worker never leaves it held."""

    def __init__(self, charge_id: int, *, namespace: str | None = None) -> None:
        self.charge_id = charge_id
        self.namespace = namespace
        self.acquired = False

    def _name(self) -> str:
        from rebill.tenancy import current_schema

        return self.namespace or f"wallets.charge:{current_schema()}"

    def __enter__(self) -> bool:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s), %s)", [self._name(), self.charge_id % 2**31])
            self.acquired = bool(cursor.fetchone()[0])
        return self.acquired

    def __exit__(self, *exc: object) -> None:
        from django.db import connection

        if self.acquired and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(hashtext(%s), %s)", [self._name(), self.charge_id % 2**31])
