"""The plan table's edges that planted bugs slipped through."""

from decimal import Decimal

import pytest

from agencies.plans import (
    MULTIPLIER_MAX,
    MULTIPLIER_MIN,
    BillingPeriod,
    NextAction,
    PhoneProvider,
    Plan,
    Product,
    RebillingDecision,
    RebillingFacts,
    RebillingState,
    effective_multiplier,
    multiplier_error,
    multiplier_is_editable,
    multipliers_in_force,
    plan_change_rules,
    plan_terms,
    rebilled_amount,
    rebilling_decision,
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


@pytest.mark.parametrize(("cost", "multiplier", "amount"), [
    # exactly half a micro-dollar rounds up (half-even would round the first two down)
    ("0.0000025", "1", "0.000003"),
    ("0.0000045", "1", "0.000005"),
    ("0.0000035", "1", "0.000004"),
    ("0.01", "1.05", "0.010500"),
    ("0.0133333", "1.2345", "0.016460"),
])
def test_the_rebilled_amount_is_rounded_half_up_to_six_places(cost, multiplier, amount):
    assert rebilled_amount(cost=Decimal(cost), multiplier=Decimal(multiplier)) == Decimal(amount)
    assert str(rebilled_amount(cost=Decimal(cost), multiplier=Decimal(multiplier))) == amount


@pytest.mark.parametrize(("old", "new", "reset", "stopped"), [
    (Plan.PRO, Plan.PRO, False, frozenset()),
    (Plan.FREELANCER, Plan.PRO, False, frozenset()),
    (Plan.STARTER, Plan.PRO, False, frozenset()),
    (Plan.PRO, Plan.FREELANCER, True, frozenset({PhoneProvider.TWILIO})),
    (Plan.STARTER, Plan.FREELANCER, True, frozenset({PhoneProvider.TWILIO})),
    (Plan.PRO, Plan.STARTER, True, frozenset({PhoneProvider.TWILIO, PhoneProvider.LC_PHONE})),
    (Plan.FREELANCER, Plan.STARTER, True, frozenset({PhoneProvider.TWILIO, PhoneProvider.LC_PHONE})),
])
def test_plan_change_rules_per_pair_of_plans(old, new, reset, stopped):
    rules = plan_change_rules(old_plan=old.value, new_plan=new.value)
    assert (rules.old_plan, rules.new_plan) == (old, new)
    assert rules.multipliers_reset is reset
    assert rules.providers_stopped == stopped
    assert rules.stops_all_rebilling is (new == Plan.STARTER)
    assert rules.summary == f"Plan changed from {old.label} to {new.label}"
    assert rules.multiplier_note == ("locked at 1.05x" if new == Plan.FREELANCER else "not rebilled")


READY = {"plan": Plan.PRO.value, "provider": PhoneProvider.LC_PHONE.value, "provider_status": "active",
         "stripe_connected": True, "has_account_admin": True, "has_card": True, "switched_on": False}
TWILIO_REJECTS = "Twilio rejects this sub-account's credentials, so its usage cannot be read."


@pytest.mark.parametrize(("changed", "reason", "action"), [
    ({"plan": Plan.STARTER.value}, "Upgrade to Freelancer or Pro to rebill phone usage.", NextAction.UPGRADE_PLAN),
    ({"provider": None, "provider_status": None}, "Choose a phone provider for this sub-account first.",
     NextAction.CHOOSE_PROVIDER),
    ({"plan": Plan.FREELANCER.value, "provider": PhoneProvider.TWILIO.value},
     "Use LeadConnector Phone on this sub-account to rebill (Twilio rebilling needs the Pro plan).",
     NextAction.USE_LC_PHONE),
    ({"provider_status": "credentials_invalid"}, TWILIO_REJECTS, NextAction.FIX_CREDENTIALS),
    ({"stripe_connected": False}, "Connect your agency's Stripe account: clients are charged through it.",
     NextAction.CONNECT_STRIPE),
    ({"has_account_admin": False},
     "This sub-account has no account admin: only the client's account admins can add a card.",
     NextAction.ADD_ACCOUNT_ADMIN),
    ({"has_card": False}, "The client has no card on file yet.", NextAction.ASK_FOR_CARD),
])
def test_each_blocker_says_why_and_what_next(changed, reason, action):
    # given a sub-account that is ready but for one precondition
    off = rebilling_decision(RebillingFacts(**{**READY, **changed}))
    on = rebilling_decision(RebillingFacts(**{**READY, **changed, "switched_on": True}))

    # then it is disabled, with that precondition's reason and next action, switched on or not
    assert off == RebillingDecision(RebillingState.DISABLED, reason, action)
    assert on == RebillingDecision(RebillingState.DISABLED,
                                   "Switched on, but paused: " + reason[0].lower() + reason[1:], action)
    assert not off.is_enabled and not off.can_switch_on
    assert not on.is_enabled and not on.can_switch_on


def test_a_paused_reason_keeps_its_whole_text():
    facts = RebillingFacts(**{**READY, "provider_status": "credentials_invalid", "switched_on": True})
    assert rebilling_decision(facts).reason == (
        "Switched on, but paused: twilio rejects this sub-account's credentials, so its usage cannot be read.")


def test_a_ready_subaccount_can_be_switched_on_and_then_is_enabled():
    ready = rebilling_decision(RebillingFacts(**READY))
    assert ready == RebillingDecision(RebillingState.CAN_BE_ENABLED,
                                      "Everything is ready: switch it on in Manage Client.", NextAction.MANAGE_CLIENT)
    assert ready.can_switch_on and not ready.is_enabled

    enabled = rebilling_decision(RebillingFacts(**{**READY, "switched_on": True}))
    assert enabled == RebillingDecision(RebillingState.ENABLED, "Phone costs are rebilled to the client.",
                                        NextAction.MANAGE_CLIENT)
    assert enabled.is_enabled and not enabled.can_switch_on


def test_a_suspended_provider_still_counts_as_working():
    facts = RebillingFacts(**{**READY, "provider_status": "suspended"})
    assert rebilling_decision(facts).state == RebillingState.CAN_BE_ENABLED


def test_multipliers_in_force_lock_then_override_then_agency_default_then_105():
    defaults = {Product.SMS.value: Decimal("1.5"), Product.CALLS.value: Decimal("2")}
    overrides = {Product.CALLS.value: Decimal("3.25"), Product.MMS.value: Decimal("1.0000")}

    assert multipliers_in_force(plan=Plan.PRO.value, agency_defaults=defaults, overrides=overrides) == {
        Product.SMS: Decimal("1.5"), Product.MMS: Decimal("1.0000"), Product.CALLS: Decimal("3.25"),
        Product.PHONE_NUMBERS: Decimal("1.0500"), Product.OTHER: Decimal("1.0500")}
    assert multipliers_in_force(plan=Plan.FREELANCER.value, agency_defaults=defaults, overrides=overrides) == {
        product: Decimal("1.0500") for product in Product}
    assert multipliers_in_force(plan=Plan.STARTER.value, agency_defaults=defaults, overrides=overrides) == {}
    assert list(multipliers_in_force(plan=Plan.PRO.value, agency_defaults={}, overrides={})) == list(Product)


@pytest.mark.parametrize(("plan", "chosen", "in_force"), [
    (Plan.PRO, None, "1.0500"), (Plan.PRO, "2.5", "2.5"), (Plan.FREELANCER, "2.5", "1.0500"),
    (Plan.FREELANCER, None, "1.0500"),
])
def test_the_effective_multiplier(plan, chosen, in_force):
    chosen_value = None if chosen is None else Decimal(chosen)
    assert str(effective_multiplier(plan=plan.value, chosen=chosen_value)) == in_force


@pytest.mark.parametrize(("plan", "editable"), [(Plan.STARTER, False), (Plan.FREELANCER, False), (Plan.PRO, True)])
def test_only_pro_edits_multipliers(plan, editable):
    assert multiplier_is_editable(plan=plan.value) is editable
