"""The plan table's edges that planted bugs slipped through."""

from decimal import Decimal

import pytest

from agencies.plans import (
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
    BillingPeriod,
    PhoneProvider,
    Plan,
    multiplier_error,
    plan_terms,
    rebilling_refusal,
)


@pytest.mark.parametrize("value", ["0.9999", "0.99995", "10.00001", "-1", "0"])
def test_a_multiplier_just_outside_the_bounds_is_refused(value):
    assert multiplier_error(Decimal(value)) is not None


@pytest.mark.parametrize("value", ["1.0000", "1.0001", "9.9999", "10.0000"])
def test_a_multiplier_on_or_just_inside_the_bounds_is_accepted(value):
    assert multiplier_error(Decimal(value)) is None


def test_the_bounds_message_names_the_range():
    assert multiplier_error(Decimal("0.9999")) == "Choose a multiplier between 1.00x and 10.00x."
    assert (MULTIPLIER_MIN, MULTIPLIER_MAX) == (Decimal("1"), Decimal("10"))


@pytest.mark.parametrize(("value", "message"), [
    ("NaN", "Enter a number."),
    ("Infinity", "Enter a number."),
    ("1.23456", "Use at most 4 decimal places."),
])
def test_a_bad_multiplier_says_what_is_wrong(value, message):
    assert multiplier_error(Decimal(value)) == message


def test_an_unknown_plan_lists_the_plans():
    with pytest.raises(ValueError) as raised:
        plan_terms("gold")
    assert str(raised.value) == "Unknown plan 'gold'; choose one of: starter, freelancer, pro"


@pytest.mark.parametrize(("plan", "provider", "refusal"), [
    (Plan.STARTER, PhoneProvider.LC_PHONE, "Upgrade to Freelancer or Pro to rebill phone usage."),
    (Plan.PRO, None, "Choose a phone provider for this sub-account first."),
    (Plan.FREELANCER, PhoneProvider.TWILIO,
     "Use LeadConnector Phone on this sub-account to rebill (Twilio rebilling needs the Pro plan)."),
    (Plan.FREELANCER, PhoneProvider.LC_PHONE, None),
    (Plan.PRO, PhoneProvider.TWILIO, None),
])
def test_rebilling_refusals_say_what_to_do(plan, provider, refusal):
    assert rebilling_refusal(plan=plan, provider=provider) == refusal


@pytest.mark.parametrize(("plan", "monthly", "annual"), [
    (Plan.STARTER, "97", "970"), (Plan.FREELANCER, "297", "2970"), (Plan.PRO, "497", "4970"),
])
def test_each_plan_costs_its_price_per_period(plan, monthly, annual):
    terms = plan_terms(plan)
    assert terms.price(BillingPeriod.MONTHLY) == Decimal(monthly)
    assert terms.price(BillingPeriod.ANNUAL) == Decimal(annual)
