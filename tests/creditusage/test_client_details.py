"""Company Billing → See details: this sub-account's transactions only, no agency cost or multiplier, totals and
CSV equal to the ledger, keyset pages, filters that refuse bad input."""

from decimal import Decimal

import pytest
from django_tenants.utils import tenant_context

from tests.conftest import client_for
from tests.creditusage.helpers import INJECTION, history, ledger, parse_csv
from wallets.models import WalletEntry
from wallets.services import wallet_adjust, wallet_ensure


def test_client_sees_every_transaction_of_their_wallet_and_nothing_of_the_agency(world, connected, raw_stripe):
    # given a history in A's first client, another client of A and a client of B
    client = history(world.a, raw_stripe)
    history(world.a, raw_stripe, index=1, secret="other client's secret", top_up=False)
    history(world.b, raw_stripe, secret="bravo's secret", top_up=False)
    # when the account admin opens See details
    browser = client_for(world.a, world.a.account_admins[0])
    html = browser.get(f"/accounts/{client.pk}/billing/details/").content.decode()
    # then every entry is there, with totals equal to the ledger
    with tenant_context(world.a.agency):
        expected = ledger(client)
        multipliers = {str(m) for m in WalletEntry.objects.exclude(multiplier=None).values_list("multiplier",
                                                                                                  flat=True)}
        costs = [f"{c}" for c in WalletEntry.objects.exclude(cost_delta=None).values_list("cost_delta", flat=True)]
    assert expected["count"] == 6
    assert f'data-testid="total-count">{expected["count"]}<' in html
    assert f'data-testid="total-credits">${expected["credits"]:.2f}<' in html
    assert f'data-testid="total-debits">${expected["debits"]:.2f}<' in html
    assert 'data-testid="daily-chart"' in html and "<script" not in html.split("<main")[-1]
    # and nothing of the agency's side or of anyone else
    assert "secret" not in html
    assert "Agency cost" not in html and "Multiplier" not in html and "Profit" not in html
    for multiplier in multipliers:
        assert multiplier not in html and f"{Decimal(multiplier):.4f}x" not in html
    for cost in costs:
        assert cost not in html
    # the CSV of the same filter: no agency columns, sums equal to the ledger to the 6th place
    rows = parse_csv(browser.get(f"/accounts/{client.pk}/billing/details/?format=csv"))
    assert list(rows[0]) == ["date", "type", "product", "description", "units", "unit_price", "amount",
                             "balance_after", "reference"]
    assert len(rows) == expected["count"]
    amounts = [Decimal(row["amount"]) for row in rows]
    assert sum(a for a in amounts if a > 0) == expected["credits"]
    assert sum(a for a in amounts if a < 0) == expected["debits"]
    assert all(len(row["amount"].split(".")[1]) == 6 for row in rows)
    assert any(row["reference"].startswith("pi_") for row in rows)


def test_csv_cannot_inject_a_formula_and_is_well_quoted(world, connected, raw_stripe):
    client = history(world.a, raw_stripe, top_up=False)
    with tenant_context(world.a.agency):
        for note in ["+1 cmd", "-2+3", "@SUM(A1)", 'has "quotes", commas\nand a newline']:
            wallet_adjust(wallet=wallet_ensure(subaccount=client), amount=Decimal("1"), note=note, by="t")
    rows = parse_csv(client_for(world.a, world.a.account_admins[0]).get(
        f"/accounts/{client.pk}/billing/details/?format=csv"))
    descriptions = {row["description"] for row in rows}
    assert "'" + INJECTION in descriptions and INJECTION not in descriptions
    assert {"'+1 cmd", "'-2+3", "'@SUM(A1)", 'has "quotes", commas\nand a newline'} <= descriptions
    # numbers stay numbers (a negative amount is not "escaped") and dates are ISO
    assert any(row["amount"].startswith("-") for row in rows)
    assert all("T" in row["date"] and row["date"][:4].isdigit() for row in rows)


@pytest.mark.parametrize("who", ["account_user", "agency_admin", "other_account_admin"])
def test_see_details_is_only_for_this_sub_accounts_admins(world, connected, raw_stripe, who):
    client = history(world.a, raw_stripe, top_up=False)
    user = {"account_user": world.a.account_users[0], "agency_admin": world.a.admin,
            "other_account_admin": world.a.account_admins[1]}[who]
    browser = client_for(world.a, user)
    assert browser.get(f"/accounts/{client.pk}/billing/details/").status_code == 404
    assert browser.get(f"/accounts/{client.pk}/billing/details/?format=csv").status_code == 404


def test_another_agency_never_sees_this_wallet(world, connected, raw_stripe):
    client = history(world.a, raw_stripe, secret="alpha's secret", top_up=False)
    # B's account admin of the sub-account with the same id sees B's own (empty) wallet, never A's
    with tenant_context(world.b.agency):
        b_admin_of_same_id = [u for u, s in zip(world.b.account_admins, world.b.subaccounts, strict=True)
                              if s.pk == client.pk]
    user = b_admin_of_same_id[0] if b_admin_of_same_id else world.b.account_admins[0]
    response = client_for(world.b, user).get(f"/accounts/{client.pk}/billing/details/?format=csv")
    assert response.status_code in (200, 404)
    if response.status_code == 200:
        assert parse_csv(response) == []


def test_filters_and_their_totals_equal_the_ledger(world, connected, raw_stripe):
    client = history(world.a, raw_stripe)
    browser = client_for(world.a, world.a.account_admins[0])
    url = f"/accounts/{client.pk}/billing/details/"
    with tenant_context(world.a.agency):
        debits = ledger(client, "amount < 0")
        credits = ledger(client, "amount > 0")
        sms = ledger(client, "product = %s", ("sms",))
        today = WalletEntry.objects.first().created_at.date()  # type: ignore[union-attr]
    for query, expected in [("direction=debit", debits), ("direction=credit", credits), ("product=sms", sms),
                            (f"start={today}&end={today}", ledger(client)),
                            ("start=2001-01-01&end=2001-01-31", None)]:
        html = browser.get(f"{url}?{query}").content.decode()
        rows = parse_csv(browser.get(f"{url}?{query}&format=csv"))
        count = expected["count"] if expected else 0
        assert len(rows) == count, query
        assert f'data-testid="total-count">{count}<' in html, query
        net = sum((Decimal(r["amount"]) for r in rows), Decimal(0))
        assert net == (expected["credits"] + expected["debits"] if expected else 0), query
        assert f'data-testid="total-net">${net:.2f}<' in html, query


@pytest.mark.parametrize("query", ["start=2026-02-10&end=2026-02-01", "start=yesterday", "direction=sideways",
                                   "product=fax", "after=not-a-cursor"])
def test_bad_filters_are_refused_with_a_clear_error(world, connected, raw_stripe, query):
    client = history(world.a, raw_stripe, top_up=False)
    browser = client_for(world.a, world.a.account_admins[0])
    response = browser.get(f"/accounts/{client.pk}/billing/details/?{query}")
    assert response.status_code == 400
    assert 'class="errorlist' in response.content.decode()


def test_keyset_pages_walk_the_whole_history_once(world, connected, raw_stripe):
    client = history(world.a, raw_stripe, top_up=False)
    with tenant_context(world.a.agency):
        for n in range(1, 121):
            wallet_adjust(wallet=wallet_ensure(subaccount=client), amount=Decimal(n), note=f"line {n}", by="t")
        expected = list(WalletEntry.objects.filter(wallet__subaccount=client).order_by("-created_at", "-seq")
                        .values_list("seq", flat=True))
    browser = client_for(world.a, world.a.account_admins[0])
    url, seen, pages = f"/accounts/{client.pk}/billing/details/?direction=credit", [], 0
    import re
    while url:
        html = browser.get(url).content.decode()
        seen += [int(n) for n in re.findall(r">entry (\d+)<", html)]
        pages += 1
        found = re.search(r'href="\?([^"]*)" data-testid="next-page"', html)
        url = f"/accounts/{client.pk}/billing/details/?{found.group(1).replace('&amp;', '&')}" if found else ""
    with tenant_context(world.a.agency):
        credit_seqs = set(WalletEntry.objects.filter(wallet__subaccount=client, amount__gt=0, usage_delta=None,
                                                     charge=None).values_list("seq", flat=True))
    assert seen == [s for s in expected if s in credit_seqs]
    assert pages == 3


def test_company_billing_recent_transactions_hide_the_multiplier(world, connected, raw_stripe):
    client = history(world.a, raw_stripe, top_up=False)
    with tenant_context(world.a.agency):
        multiplier = WalletEntry.objects.exclude(multiplier=None).first().multiplier  # type: ignore[union-attr]
    shown = f"{multiplier:.4f}x"
    company = client_for(world.a, world.a.account_admins[0]).get(f"/accounts/{client.pk}/billing/").content.decode()
    manage = client_for(world.a, world.a.admin).get(f"/agency/subaccounts/{client.pk}/").content.decode()
    assert 'data-testid="wallet-entries"' in company and shown not in company
    assert shown in manage
