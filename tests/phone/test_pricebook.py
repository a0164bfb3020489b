"""The LC Phone price book: public schema, append-only history, edited by platform staff in the admin,
and the price in force at a pull is the one the usage store applies."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from phone.models import UsageLine
from phone.services import usage_pull
from pricebook.models import LcPhonePrice
from pricebook.selectors import lc_phone_prices_in_force
from pricebook.services import lc_phone_price_add
from tests.phone.helpers import ADD_PRICE_URL, D, price_moment, put_usage, today, usage, use_lc_phone

pytestmark = pytest.mark.django_db



def test_staff_change_a_price_by_adding_a_row_and_the_old_one_stays(staff_client):
    before = LcPhonePrice.objects.get(category="calls-outbound")
    response = staff_client.post(ADD_PRICE_URL, {
        "category": "calls-outbound", "unit": "minute", "unit_price": "0.0180",
        **price_moment(timezone.now()),
    })
    assert response.status_code == 302
    rows = LcPhonePrice.objects.filter(category="calls-outbound").order_by("effective_from")
    assert [row.unit_price for row in rows] == [D("0.0166"), D("0.018")]
    assert rows.last().created_by.email == "prices@rebill.localhost"
    before.refresh_from_db()
    assert before.unit_price == D("0.0166")
    assert lc_phone_prices_in_force(at=timezone.now() + timedelta(seconds=1))["calls-outbound"] == D("0.018")


def test_prices_cannot_be_edited_or_deleted_in_the_admin(staff_client):
    row = LcPhonePrice.objects.get(category="mms-inbound")
    change_url = f"/admin/pricebook/lcphoneprice/{row.pk}/change/"
    assert staff_client.post(change_url, {"category": "mms-inbound", "unit": "message",
                                          "unit_price": "9"}).status_code == 403
    assert staff_client.post(f"/admin/pricebook/lcphoneprice/{row.pk}/delete/", {"post": "yes"}).status_code == 403
    row.refresh_from_db()
    assert row.unit_price == D("0.0165")
    page = staff_client.get(change_url)
    assert page.status_code == 200 and 'name="_save"' not in page.content.decode()  # view only


def test_a_backdated_or_negative_price_is_refused(staff_client):
    yesterday = timezone.now() - timedelta(days=1)
    response = staff_client.post(ADD_PRICE_URL, {
        "category": "mms-inbound", "unit": "message", "unit_price": "-1",
        **price_moment(yesterday),
    })
    page = response.content.decode()
    assert response.status_code == 200 and "never from the past" in page and "zero or more" in page
    assert LcPhonePrice.objects.filter(category="mms-inbound").count() == 1
    with pytest.raises(ValidationError):
        lc_phone_price_add(category="not-a-category", unit="x", unit_price=D("1"), by=None)
    with pytest.raises(ValidationError, match="6 decimal places"):
        lc_phone_price_add(category="mms-inbound", unit="message", unit_price=D("0.0000001"), by=None)


def test_a_scheduled_price_applies_only_from_its_moment(world, twilio):
    lc_phone_price_add(category="sms-outbound-longcode", unit="segment", unit_price=D("0.05"),
                       effective_from=timezone.now() + timedelta(hours=1), by=None)
    with tenant_context(world.a.agency):
        provider = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        put_usage(twilio.url, provider.lc_phone_account_sid, [usage("sms-outbound-longcode", today(), 10)])
        usage_pull(provider_id=provider.pk)
        [line] = UsageLine.objects.all()
        in_force = lc_phone_prices_in_force(at=line.fetched_at)
    assert line.unit_price == in_force["sms-outbound-longcode"] == D("0.0083")
    assert line.cost == D("0.083")


def test_the_price_book_lives_in_the_public_schema_only(world):
    with tenant_context(world.a.agency), connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s), to_regclass(%s)",
                       [f"{world.a.agency.schema_name}.pricebook_lcphoneprice", "public.pricebook_lcphoneprice"])
        in_agency, in_public = cursor.fetchone()
    assert in_agency is None and in_public is not None
