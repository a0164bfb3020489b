from decimal import Decimal

import pytest

from stripe_connect.money import from_minor_units, to_minor_units


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    (Decimal("10.50"), "usd", 1050), (Decimal("0.5"), "USD", 50), (Decimal("1500"), "jpy", 1500),
    (Decimal("1.234"), "kwd", 1234), (Decimal("-2.00"), "eur", -200),
])
def test_amounts_become_integer_minor_units_by_the_currencys_rules(amount, currency, minor):
    assert to_minor_units(amount, currency) == minor
    assert from_minor_units(minor, currency) == amount


@pytest.mark.parametrize(("amount", "currency"), [(Decimal("10.505"), "usd"), (Decimal("100.5"), "jpy")])
def test_an_amount_finer_than_the_minor_unit_is_refused(amount, currency):
    with pytest.raises(ValueError) as refused:
        to_minor_units(amount, currency)
    assert str(refused.value) == f"{amount} {currency.upper()} is not a whole number of minor units; round it first"


@pytest.mark.parametrize("amount", [10.5, Decimal("Infinity"), Decimal("NaN")])
def test_floats_and_amounts_that_are_not_finite_are_refused(amount):
    with pytest.raises(TypeError) as refused:
        to_minor_units(amount, "usd")
    assert str(refused.value) == f"Stripe amounts must be finite Decimals, not {amount!r}"
