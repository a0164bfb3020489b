"""The price book's rules at their edges: what a price may be, from when, and what staff see when one is refused."""

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from pricebook.models import LcPhonePrice
from pricebook.selectors import lc_phone_prices_in_force
from pricebook.services import lc_phone_price_add, lc_phone_price_errors
from tests.phone.helpers import ADD_PRICE_URL, D, price_moment

pytestmark = pytest.mark.django_db



def errors_for(**overrides) -> dict[str, str]:
    fields = {"category": "mms-inbound", "unit": "message", "unit_price": D("0.02"),
              "effective_from": timezone.now()}
    return lc_phone_price_errors(**{**fields, **overrides})


def test_a_valid_price_has_no_errors_and_each_mistake_is_told_on_its_own_field():
    assert errors_for() == {}
    assert errors_for(category="sms") == {"category": "'sms' is not a billable Twilio usage category."}
    assert errors_for(unit="   ") == {"unit": "Say what one unit is (e.g. segment, minute, number per month)."}
    assert errors_for(unit_price=D("-0.01")) == {"unit_price": "Enter a price of zero or more."}
    assert errors_for(unit_price=D("0.0000001")) == {"unit_price": "Use at most 6 decimal places."}
    assert errors_for(effective_from=timezone.now() - timedelta(hours=1)) == {
        "effective_from": "A price applies from now or a future moment, never from the past."}


def test_free_and_fractional_prices_are_accepted_infinite_ones_refused():
    assert errors_for(unit_price=D("0")) == {}
    assert errors_for(unit_price=D("0.5")) == {}
    assert errors_for(unit_price=D("0.000001")) == {}
    assert errors_for(unit_price=D("Infinity")) == {"unit_price": "Enter a price of zero or more."}
    assert errors_for(unit_price=D("NaN")) == {"unit_price": "Enter a price of zero or more."}


def test_a_form_opened_a_few_minutes_ago_still_counts_as_now_but_not_longer():
    assert errors_for(effective_from=timezone.now() - timedelta(minutes=4)) == {}
    assert "effective_from" in errors_for(effective_from=timezone.now() - timedelta(minutes=6))


def test_the_unit_is_stored_without_surrounding_spaces():
    row = lc_phone_price_add(category="mms-inbound", unit="  message ", unit_price=D("0.02"),
                             effective_from=timezone.now() + timedelta(hours=2), by=None)
    row.refresh_from_db()
    assert row.unit == "message"


def test_a_price_takes_effect_at_its_exact_moment_and_the_latest_one_wins():
    start = timezone.now() + timedelta(hours=1)
    lc_phone_price_add(category="mms-inbound", unit="message", unit_price=D("0.03"), effective_from=start, by=None)
    lc_phone_price_add(category="mms-inbound", unit="message", unit_price=D("0.04"),
                       effective_from=start + timedelta(hours=1), by=None)
    assert lc_phone_prices_in_force(at=start - timedelta(microseconds=1))["mms-inbound"] == D("0.0165")
    assert lc_phone_prices_in_force(at=start)["mms-inbound"] == D("0.03")
    assert lc_phone_prices_in_force(at=start + timedelta(hours=3))["mms-inbound"] == D("0.04")


def test_staff_schedule_a_price_for_a_later_moment_in_the_admin(staff_client):
    later = (timezone.now() + timedelta(days=3)).replace(microsecond=0)
    response = staff_client.post(ADD_PRICE_URL, {
        "category": "mms-inbound", "unit": "message", "unit_price": "0.0200", **price_moment(later),
    })
    assert response.status_code == 302
    row = LcPhonePrice.objects.filter(category="mms-inbound").latest("effective_from")
    assert row.effective_from == later and row.unit_price == D("0.02")


def test_save_and_continue_lands_on_the_new_row(staff_client):
    response = staff_client.post(ADD_PRICE_URL, {
        "category": "mms-inbound", "unit": "message", "unit_price": "0.0200", "_continue": "1",
        **price_moment(timezone.now() + timedelta(hours=1)),
    })
    row = LcPhonePrice.objects.filter(category="mms-inbound").latest("effective_from")
    assert response.status_code == 302
    assert response["Location"] == f"/admin/pricebook/lcphoneprice/{row.pk}/change/"


def test_the_service_refuses_what_the_form_would_refuse():
    with pytest.raises(ValidationError) as info:
        lc_phone_price_add(category="mms-inbound", unit=" ", unit_price=D("1"), by=None)
    assert set(info.value.message_dict) == {"unit"}
