"""What Manage Client's Phone System Resell Settings section shows: used by its own views and Manage Client."""

from __future__ import annotations

from decimal import Decimal

from agencies.plans import Product, rebilled_amount
from rebilling.forms import AutoRechargeForm, MultipliersForm
from rebilling.selectors import resell_section
from subaccounts.models import SubAccount

# The preview shows what the client pays for this much agency cost.
PREVIEW_COST = Decimal("10.00")


def resell_context(*, subaccount: SubAccount, multipliers_form: MultipliersForm | None = None,
                   recharge_form: AutoRechargeForm | None = None) -> dict[str, object]:
    section = resell_section(subaccount=subaccount)
    if multipliers_form is None:
        overrides = {row.product.value: row.override for row in section.multipliers if row.override is not None}
        multipliers_form = MultipliersForm(initial_multipliers=overrides)
    if recharge_form is None:
        recharge_form = AutoRechargeForm(initial={"amount": f"{section.settings.auto_recharge_amount:.2f}",
                                                  "threshold": f"{section.settings.auto_recharge_threshold:.2f}"})
    preview = preview_rows({row.product.value: row.in_force for row in section.multipliers})
    from wallets.selectors import wallet_summary  # wallets imports rebilling's models

    return {"resell": section, "multipliers_form": multipliers_form, "recharge_form": recharge_form,
            "preview": preview, "wallet_summary": wallet_summary(subaccount=subaccount)}


def preview_rows(multipliers: dict[str, Decimal | None]) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for product, multiplier in multipliers.items():
        if multiplier is None:
            rows.append({"label": Product(product).label, "multiplier": None})
            continue
        pays = rebilled_amount(cost=PREVIEW_COST, multiplier=multiplier)
        rows.append({"label": Product(product).label, "multiplier": multiplier, "cost": PREVIEW_COST, "pays": pays,
                     "keeps": pays - PREVIEW_COST})
    return rows
