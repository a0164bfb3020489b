"""Manage Client reads its sub-account's one-to-one rows (billing profile, provider, switch, wallet) with the
sub-account itself, in a bounded number of queries; elsewhere those rows are read fresh, never from what a
service left cached on the instance."""

from decimal import Decimal

import pytest
from django.db import connection, transaction
from django.http import Http404
from django.test.utils import CaptureQueriesContext
from django_tenants.utils import tenant_context

from rebilling.models import MultiplierOverride, SubAccountRebilling
from rebilling.services import rebilling_switch_on
from subaccounts.models import SubAccount
from subaccounts.selectors import one_to_one_row, subaccount_for_manage_client
from tests.conftest import client_for
from tests.factories import SubAccountFactory
from wallets.services import wallet_adjust, wallet_ensure

# Every query of a Manage Client page with each section filled in (wallet entries, switch, override, audit),
# middleware's included; each is preceded by django-tenants' SET search_path, counted too. Was 50 before the
# sections' one-to-one rows were read with the sub-account.
MANAGE_CLIENT_QUERIES = 32


def _selects(queries: CaptureQueriesContext) -> list[str]:
    return [q["sql"] for q in queries.captured_queries if q["sql"].lstrip().upper().startswith(("SELECT", "("))]


def test_manage_client_reads_a_filled_in_client_in_a_bounded_number_of_queries(world, ready,
                                                                                django_assert_max_num_queries):
    # given a client with every section filled in: switched on, an override, a wallet with entries
    with tenant_context(world.a.agency):
        rebilling_switch_on(subaccount=ready, by=world.a.admin)
        MultiplierOverride.objects.create(subaccount=ready, product="sms", multiplier=Decimal("2.5"))
        wallet_adjust(wallet=wallet_ensure(subaccount=ready), amount=Decimal("12.34"), note="opening credit", by="t")
    client = client_for(world.a, world.a.admin)
    client.get(f"/agency/subaccounts/{ready.pk}/")  # sessions and caches warm, as for any later request

    # when the agency admin opens Manage Client
    with django_assert_max_num_queries(MANAGE_CLIENT_QUERIES):
        response = client.get(f"/agency/subaccounts/{ready.pk}/")

    # then every section shows this client's rows
    html = response.content.decode()
    assert response.status_code == 200
    assert "ending in <strong>4242</strong>" in html  # the card on file
    assert "Switch phone rebilling off" in html
    assert 'data-testid="wallet-balance">$12.34<' in html and "opening credit" in html
    assert 'value="2.5' in html


def test_rows_read_with_the_sub_account_come_without_a_query(world, ready):
    with tenant_context(world.a.agency):
        subaccount = subaccount_for_manage_client(user=world.a.admin, subaccount_id=ready.pk)
        with CaptureQueriesContext(connection) as queries:
            profile = one_to_one_row(subaccount=subaccount, related_name="billing_profile")
            provider = one_to_one_row(subaccount=subaccount, related_name="phone_provider")
            assert one_to_one_row(subaccount=subaccount, related_name="rebilling") is None
            assert one_to_one_row(subaccount=subaccount, related_name="wallet") is None
        assert _selects(queries) == []
        assert (profile.subaccount_id, profile.card_last4) == (ready.pk, "4242")
        # a row built on the instance later (an unsaved default switch) is not taken for the table's
        SubAccountRebilling(subaccount=subaccount)
        assert one_to_one_row(subaccount=subaccount, related_name="rebilling") is None
        assert provider.subaccount_id == ready.pk
        with pytest.raises(Http404):
            subaccount_for_manage_client(user=world.a.account_admins[0], subaccount_id=ready.pk)


class _Undone(Exception):
    pass


def test_rows_left_cached_by_a_write_are_read_again(world, db):
    with tenant_context(world.a.agency):
        # given a row created on the instance and rolled back, and one created and then changed by a query
        subaccount = SubAccount.objects.get(pk=SubAccountFactory(name="Cached rows").pk)
        with pytest.raises(_Undone), transaction.atomic():
            wallet_ensure(subaccount=subaccount)
            SubAccountRebilling.objects.create(subaccount=subaccount)
            raise _Undone
        other = SubAccount.objects.get(pk=SubAccountFactory(name="Changed rows").pk)
        SubAccountRebilling.objects.create(subaccount=other)
        SubAccountRebilling.objects.filter(subaccount=other).update(auto_recharge_amount=Decimal("25"))

        # then each is read as the table holds it
        assert one_to_one_row(subaccount=subaccount, related_name="rebilling") is None
        assert one_to_one_row(subaccount=subaccount, related_name="wallet") is None
        assert one_to_one_row(subaccount=other, related_name="rebilling").auto_recharge_amount == Decimal("25")
