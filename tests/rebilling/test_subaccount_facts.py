"""The stored rebilling facts (what Settings → Phone Integration reads) always give the policy's answer: after every
kind of write to the rows they come from — services, bulk updates, deletions — and after plan changes and a Stripe
reconnection, each sub-account's state on the page equals rebilling_decision over its live rows."""

from __future__ import annotations

from django.db import connection
from django_tenants.utils import tenant_context

from agencies.models import Agency
from agencies.services import agency_plan_change
from billing.models import BillingProfile
from people.models import User
from phone.models import ProviderStatus, SubAccountProvider
from rebilling.models import SubAccountFacts
from rebilling.selectors import phone_integration_page, rebilling_decision_for
from rebilling.services import rebilling_switch_off, rebilling_switch_on
from stripe_connect.models import ConnectedAccount
from subaccounts.models import Membership, SubAccount
from subaccounts.services import membership_remove, subaccount_update
from tests.factories import SubAccountFactory
from tests.rebilling.conftest import ACCT_A, ACCT_B, ALL_SHAPES, Shape, connect, make_subaccount

READY = Shape("lc_phone", ProviderStatus.ACTIVE, has_admin=True, has_card=True)


def _page_states() -> dict[int, tuple[str, str, str]]:
    """Every sub-account's (state, reason, action) as the page shows it, read page by page in every sort."""
    states: dict[int, tuple[str, str, str]] = {}
    for sort in ("name", "-state", "state", "provider"):
        first = phone_integration_page(sort=sort, per_page=7)
        seen = {}
        for number in range(1, first.pages + 1):
            for row in phone_integration_page(sort=sort, page=number, per_page=7).rows:
                seen[row.subaccount_id] = (row.decision.state, row.decision.reason, row.decision.action)
        assert len(seen) == first.total
        states = states or seen
        assert seen == states
    return states


def _assert_page_follows_the_policy(agency: Agency) -> None:
    with tenant_context(Agency.objects.get(pk=agency.pk)):
        live = {subaccount.pk: rebilling_decision_for(subaccount=subaccount) for subaccount in SubAccount.objects.all()}
        assert _page_states() == {pk: (d.state, d.reason, d.action) for pk, d in live.items()}
        page = phone_integration_page()
        assert page.counts == {state: sum(d.state == state for d in live.values()) for state in page.counts}
        for state in page.counts:
            filtered = phone_integration_page(state=state, per_page=1000)
            assert {row.subaccount_id for row in filtered.rows} == {pk for pk, d in live.items() if d.state == state}
        assert set(SubAccountFacts.objects.values_list("subaccount_id", flat=True)) == set(live)


def test_stored_facts_follow_every_write_and_every_plan(world, db):
    # given a Pro agency connected to Stripe with a sub-account of every shape (built straight in the tables)
    agency, admin = world.a.agency, world.a.admin
    connect(agency, ACCT_A)
    connect(world.b.agency, ACCT_B)
    with tenant_context(agency):
        made = {shape: make_subaccount(shape, name=f"Facts {shape.label}") for shape in ALL_SHAPES}
        ready = [make_subaccount(READY, name=f"Facts ready {n}") for n in range(9)]
        old_card = make_subaccount(ALL_SHAPES[2], name="Facts card on an older account", account_id=ACCT_B)
    with tenant_context(world.b.agency):
        make_subaccount(ALL_SHAPES[2], name="Facts bravo")
    _assert_page_follows_the_policy(agency)

    with tenant_context(agency):
        # when the switch goes on (service), then off again for one
        for subaccount in [*ready, *(s for s in made.values() if rebilling_decision_for(subaccount=s).can_switch_on)]:
            rebilling_switch_on(subaccount=subaccount, by=admin)
        rebilling_switch_off(subaccount=ready[0], by=admin)
    _assert_page_follows_the_policy(agency)

    with tenant_context(agency):
        # when Twilio rejects one's credentials, another's provider row is removed, a card is dropped in bulk
        SubAccountProvider.objects.filter(subaccount=ready[1]).update(status=ProviderStatus.CREDENTIALS_INVALID)
        SubAccountProvider.objects.filter(subaccount=ready[2]).delete()
        BillingProfile.objects.filter(subaccount=ready[3]).update(card_payment_method_id="")
        # a card moves to the current account; a profile moves to another sub-account
        BillingProfile.objects.filter(subaccount=old_card).update(stripe_account_id=ACCT_A)
        lone = SubAccountFactory(name="Facts lone")
        BillingProfile.objects.filter(subaccount=ready[4]).update(subaccount=lone)
    _assert_page_follows_the_policy(agency)

    with tenant_context(agency):
        # when an account admin leaves (service), another is deactivated, another becomes a plain account user,
        # and a sub-account is renamed
        membership_remove(membership=Membership.objects.get(subaccount=ready[5]), by=admin)
        deactivated = Membership.objects.get(subaccount=ready[6]).user
        User.objects.filter(pk=deactivated.pk).update(is_active=False)
        Membership.objects.filter(subaccount=ready[7]).update(role=Membership.Role.ACCOUNT_USER)
        subaccount_update(subaccount=ready[8], name="Facts renamed", contact_email="", phone="", by=admin)
    _assert_page_follows_the_policy(agency)
    with tenant_context(agency):
        assert phone_integration_page(query="Facts renamed").rows[0].subaccount_id == ready[8].pk
        # the deactivated admin comes back
        deactivated.is_active = True
        deactivated.save()
    _assert_page_follows_the_policy(agency)

    # when the plan changes (Pro → Freelancer → Starter → Pro), between each
    for plan in ("freelancer", "starter", "pro"):
        connection.set_schema_to_public()
        agency_plan_change(agency=Agency.objects.get(pk=agency.pk), plan=plan, by="staff@platform.test")
        _assert_page_follows_the_policy(agency)

    # when the agency reconnects to another Stripe account, then disconnects
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=agency).update(account_id="acct_1RebillOtherCCCCC")
    _assert_page_follows_the_policy(agency)
    connection.set_schema_to_public()
    ConnectedAccount.objects.filter(agency=agency).delete()
    _assert_page_follows_the_policy(agency)

    # when a sub-account is deleted, its facts go with it
    with tenant_context(agency):
        gone = SubAccountFactory(name="Facts gone")
        gone_id = gone.pk
        gone.delete()
        assert not SubAccountFacts.objects.filter(subaccount_id=gone_id).exists()
    _assert_page_follows_the_policy(agency)
