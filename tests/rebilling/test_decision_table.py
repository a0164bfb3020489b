"""The whole decision table: plan × provider (none / LC Phone / Twilio, working or credentials rejected) × Stripe
connected × account admin × card on file → state, reason, next action. The policy is checked on its own, then the
Phone Integration page and the toggle are checked to agree with it in every cell."""

from __future__ import annotations

import html
import itertools
import re

import pytest
from django.db import connection
from django_tenants.utils import tenant_context

from agencies.plans import NextAction, Plan, RebillingFacts, RebillingState, rebilling_decision
from rebilling.models import SubAccountRebilling
from tests.conftest import client_for
from tests.rebilling.conftest import ACCT_A, ALL_SHAPES, Shape, connect, make_subaccount, set_plan

ENABLED, CAN, DISABLED = RebillingState.ENABLED, RebillingState.CAN_BE_ENABLED, RebillingState.DISABLED


def expected(plan: str, shape: Shape, stripe_connected: bool) -> tuple[RebillingState, NextAction]:
    """The rules of DESIGN §3 and §7, written out: the first precondition that fails decides."""
    if plan == Plan.STARTER:
        return DISABLED, NextAction.UPGRADE_PLAN
    if shape.provider is None:
        return DISABLED, NextAction.CHOOSE_PROVIDER
    if plan == Plan.FREELANCER and shape.provider == "twilio":
        return DISABLED, NextAction.USE_LC_PHONE
    if shape.status == "credentials_invalid":
        return DISABLED, NextAction.FIX_CREDENTIALS
    if not stripe_connected:
        return DISABLED, NextAction.CONNECT_STRIPE
    if not shape.has_admin:
        return DISABLED, NextAction.ADD_ACCOUNT_ADMIN
    if not shape.has_card:
        return DISABLED, NextAction.ASK_FOR_CARD
    return CAN, NextAction.MANAGE_CLIENT


CELLS = list(itertools.product(Plan.values, ALL_SHAPES, (True, False)))


@pytest.mark.parametrize(("plan", "shape", "stripe_connected"), CELLS,
                         ids=[f"{p}-{s.label}-stripe{int(c)}" for p, s, c in CELLS])
def test_policy_cell(plan, shape, stripe_connected):
    facts = RebillingFacts(plan=plan, provider=shape.provider, provider_status=shape.status,
                           stripe_connected=stripe_connected, has_account_admin=shape.has_admin,
                           has_card=shape.has_card, switched_on=False)
    state, action = expected(plan, shape, stripe_connected)
    decision = rebilling_decision(facts)
    assert (decision.state, decision.action) == (state, action)
    assert decision.reason

    # switched on, the same cell is enabled when it could be, and otherwise paused with the same next action
    on = rebilling_decision(RebillingFacts(**{**facts.__dict__, "switched_on": True}))
    assert on.state == (ENABLED if state == CAN else DISABLED)
    assert on.action == action
    if on.state == DISABLED:
        assert on.reason.startswith("Switched on, but paused:")


@pytest.mark.parametrize("plan", Plan.values)
@pytest.mark.parametrize("stripe_connected", [True, False])
def test_page_and_toggle_agree_with_the_policy_in_every_cell(world, db, plan, stripe_connected):
    # given agency A on `plan`, connected or not, with one sub-account of every shape
    agency = set_plan(world.a.agency, plan)
    if stripe_connected:
        connect(agency, ACCT_A)
    with tenant_context(agency):
        subaccounts = {make_subaccount(shape, name=f"Cell {shape.label}").pk: shape for shape in ALL_SHAPES}
    connection.set_schema_to_public()
    client = client_for(world.a, world.a.admin)

    # when the admin opens Phone Integration, then every row says what the policy says
    page = client.get("/agency/settings/phone-integration/", {"q": "Cell "}).content.decode()
    rows = dict(re.findall(r'<tr data-subaccount="(\d+)">(.*?)</tr>', page, flags=re.S))
    assert set(map(int, rows)) == set(subaccounts)
    for pk, shape in subaccounts.items():
        state, action = expected(plan, shape, stripe_connected)
        row = rows[str(pk)]
        assert f'data-state="{state.value}"' in row, (shape, row)
        assert f'data-action="{action.value}"' in row, (shape, row)
        assert action.label in row

    # and the toggle switches on exactly the cells the policy allows, refusing the others with the page's reason
    for pk, shape in subaccounts.items():
        state, _ = expected(plan, shape, stripe_connected)
        response = client.post(f"/agency/subaccounts/{pk}/rebilling/switch/", {"switch": "on"}, HTTP_HX_REQUEST="true")
        with tenant_context(agency):
            switched_on = SubAccountRebilling.objects.filter(subaccount_id=pk, switched_on=True).exists()
        if state == CAN:
            assert response.status_code == 200
            assert 'data-state="enabled"' in response.content.decode()
            assert switched_on
        else:
            reason = re.search(r'<td class="reason">(.*?)</td>', rows[str(pk)], flags=re.S).group(1).strip()
            answer = html.unescape(response.content.decode())
            assert response.status_code == 400
            assert f"Rebilling was not switched on: {html.unescape(reason)}" in answer
            assert not switched_on
