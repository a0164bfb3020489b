"""Settings → Billing → See details: the agency's wallet with the platform, keyset pages, filters by date and
type, and a CSV equal to the ledger; an agency sees only its own wallet."""

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from agency_wallets.models import AgencyWallet, UsageToBill
from agency_wallets.services import agency_wallets_bill
from phone.models import SubAccountProvider
from tests.conftest import client_for
from tests.creditusage.helpers import parse_csv
from tests.wallets.helpers import add_delta

pytestmark = pytest.mark.django_db
URL = "/agency/settings/billing/platform-wallet/"


@pytest.fixture
def billed(world):
    """A: 57 LC Phone deltas billed (three of them corrections); B: two."""
    connection.set_schema_to_public()
    UsageToBill.objects.all().delete()  # other tests commit usage; bill only this test's
    with tenant_context(world.a.agency):
        client = world.a.subaccounts[1]
        SubAccountProvider.objects.create(subaccount=client, provider="lc_phone", lc_phone_account_sid="AC" + "3" * 32)
        for n in range(57):
            add_delta(client, "-0.0100" if n % 20 == 7 else f"0.{n + 10:02d}79")
    with tenant_context(world.b.agency):
        other = world.b.subaccounts[0]
        SubAccountProvider.objects.create(subaccount=other, provider="lc_phone", lc_phone_account_sid="AC" + "4" * 32)
        add_delta(other, "5.00")
        add_delta(other, "6.00")
    connection.set_schema_to_public()
    agency_wallets_bill()
    return AgencyWallet.objects.get(agency=world.a.agency)


def _seqs(html: str) -> list[int]:
    return [int(seq) for seq in re.findall(r'data-seq="(\d+)"', html)]


def test_the_agency_pages_through_its_platform_wallet(world, billed):
    browser = client_for(world.a, world.a.admin)
    seqs = list(billed.entries.order_by("-seq").values_list("seq", flat=True))
    assert 50 < len(seqs) <= 100
    first = browser.get(URL).content.decode()
    assert _seqs(first) == seqs[:50]
    assert f'data-testid="platform-balance">${billed.balance:.2f}<' in first
    following = re.search(r'href="\?([^"]+)" data-testid="next-page"', first)
    assert following is not None
    second = browser.get(URL + "?" + following.group(1).replace("&amp;", "&")).content.decode()
    assert _seqs(second) == seqs[50:] and 'data-testid="next-page"' not in second
    # the CSV: every entry, amounts equal to the ledger to the 6th place, nothing of B
    rows = parse_csv(browser.get(URL + "?format=csv"))
    entries = list(billed.entries.order_by("-seq").values_list("seq", "amount", "balance_after"))
    assert [(int(r["seq"]), Decimal(r["amount"]), Decimal(r["balance_after"])) for r in rows] == entries
    assert sum(Decimal(r["amount"]) for r in rows) == billed.balance
    assert all(r["reference"].startswith("usage ") and r["date"][:4].isdigit() for r in rows)
    assert "5.000000" not in str(rows) and "-6.000000" not in str(rows)


def test_filters_by_type_and_date(world, billed):
    browser = client_for(world.a, world.a.admin)
    credits = parse_csv(browser.get(URL + "?kind=usage_credit&format=csv"))
    assert [int(r["seq"]) for r in credits] == list(billed.entries.filter(kind="usage_credit").order_by("-seq")
                                                    .values_list("seq", flat=True))
    assert len(credits) >= 3 and all(Decimal(r["amount"]) > 0 for r in credits)
    html = browser.get(URL + "?kind=usage_credit").content.decode()
    assert len(_seqs(html)) == len(credits)
    today = timezone.now().date()
    assert len(parse_csv(browser.get(f"{URL}?start={today}&end={today}&format=csv"))) == billed.entries.filter(
        created_at__date=today).count() >= 57
    assert parse_csv(browser.get(f"{URL}?start={today + timedelta(days=1)}&format=csv")) == []
    for bad in (f"start={today}&end={today - timedelta(days=1)}", "kind=refund", "start=2026-02-30", "after=x"):
        response = browser.get(f"{URL}?{bad}")
        assert response.status_code == 400 and 'class="errorlist' in response.content.decode(), bad


def test_each_agency_sees_only_its_own_wallet_and_only_its_admins(world, billed):
    rows = parse_csv(client_for(world.b, world.b.admin).get(URL + "?format=csv"))
    assert sorted(Decimal(r["amount"]) for r in rows) == [Decimal("-6.000000"), Decimal("-5.000000")]
    for user in (world.a.agency_user, world.a.account_admins[0], world.a.account_users[0]):
        browser = client_for(world.a, user)
        assert browser.get(URL).status_code == 404 and browser.get(URL + "?format=csv").status_code == 404



def _totals(html: str) -> tuple[int, Decimal, Decimal, Decimal]:
    count = re.search(r'data-testid="total-count">(\d+)<', html)
    values = {name: re.search(rf'data-testid="total-{name}" data-value="(-?[\d.]+)"', html)
              for name in ("credits", "debits", "net")}
    assert count is not None and all(values.values()), html
    return (int(count.group(1)), *(Decimal(values[name].group(1)) for name in ("credits", "debits", "net")))  # type: ignore[union-attr]


@pytest.mark.parametrize("query", ["", "kind=usage_credit", "kind=usage_debit", "start={today}&end={today}",
                                   "start={tomorrow}"])
def test_totals_for_the_filter_equal_the_sum_of_its_rows(world, billed, query):
    """Over every row the filter selects (more than one page), not the page shown; independently summed from
    the ledger too."""
    today = timezone.now().date()
    query = query.format(today=today, tomorrow=today + timedelta(days=1))
    browser = client_for(world.a, world.a.admin)
    count, credits, debits, net = _totals(browser.get(f"{URL}?{query}").content.decode())
    rows = parse_csv(browser.get(f"{URL}?{query}&format=csv"))
    amounts = [Decimal(r["amount"]) for r in rows]
    assert count == len(rows)
    assert credits == sum((a for a in amounts if a > 0), Decimal(0))
    assert debits == sum((a for a in amounts if a < 0), Decimal(0))
    assert net == credits + debits == sum(amounts, Decimal(0))
    entries = billed.entries.all()
    if "kind=" in query:
        entries = entries.filter(kind=query.split("=")[1])
    if "start=" in query:
        entries = entries.filter(created_at__date=today) if "end=" in query else entries.none()
    ledger = list(entries.values_list("amount", flat=True))
    assert (count, net) == (len(ledger), sum(ledger, Decimal(0)))
    if query == "":
        assert count > 50 and net == billed.balance  # the whole ledger, more than the first page
