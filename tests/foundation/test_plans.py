from decimal import Decimal

import pytest

from agencies.plans import (
    PhoneProvider,
    Plan,
    effective_multiplier,
    multiplier_error,
    multiplier_is_editable,
    plan_terms,
    rebilling_refusal,
)


def test_prices():
    assert plan_terms("freelancer").monthly_price == Decimal("297")
    assert plan_terms("freelancer").annual_price == Decimal("2970")
    assert plan_terms("pro").monthly_price == Decimal("497")
    assert plan_terms("pro").annual_price == Decimal("4970")


@pytest.mark.parametrize(
    ("plan", "provider", "refusal"),
    [
        (Plan.STARTER, PhoneProvider.LC_PHONE, "Upgrade to Freelancer or Pro"),
        (Plan.STARTER, PhoneProvider.TWILIO, "Upgrade to Freelancer or Pro"),
        (Plan.FREELANCER, PhoneProvider.LC_PHONE, None),
        (Plan.FREELANCER, PhoneProvider.TWILIO, "Use LeadConnector Phone on this sub-account"),
        (Plan.PRO, PhoneProvider.LC_PHONE, None),
        (Plan.PRO, PhoneProvider.TWILIO, None),
    ],
)
def test_who_may_be_rebilled(plan, provider, refusal):
    result = rebilling_refusal(plan=plan, provider=provider)
    if refusal is None:
        assert result is None
    else:
        assert refusal in result


def test_freelancer_multiplier_is_locked_at_105():
    assert not multiplier_is_editable(plan=Plan.FREELANCER)
    assert effective_multiplier(plan=Plan.FREELANCER, chosen=Decimal("3")) == Decimal("1.05")
    assert multiplier_is_editable(plan=Plan.PRO)
    assert effective_multiplier(plan=Plan.PRO, chosen=Decimal("2.5")) == Decimal("2.5")
    assert effective_multiplier(plan=Plan.PRO, chosen=None) == Decimal("1.05")


@pytest.mark.parametrize(
    ("value", "ok"),
    [("1", True), ("10", True), ("1.2345", True), ("0.99", False), ("10.0001", False), ("1.23456", False),
     ("NaN", False), ("Infinity", False)],
)
def test_multiplier_bounds(value, ok):
    assert (multiplier_error(Decimal(value)) is None) is ok


def test_unknown_plan():
    with pytest.raises(ValueError, match="Unknown plan 'gold'"):
        plan_terms("gold")
