"""The plan table's edges that planted bugs slipped through."""

from decimal import Decimal

import pytest

from agencies.plans import MULTIPLIER_MAX, MULTIPLIER_MIN, multiplier_error


@pytest.mark.parametrize("value", ["0.9999", "0.99995", "10.00001", "-1", "0"])
def test_a_multiplier_just_outside_the_bounds_is_refused(value):
    assert multiplier_error(Decimal(value)) is not None


@pytest.mark.parametrize("value", ["1.0000", "1.0001", "9.9999", "10.0000"])
def test_a_multiplier_on_or_just_inside_the_bounds_is_accepted(value):
    assert multiplier_error(Decimal(value)) is None


def test_the_bounds_message_names_the_range():
    assert multiplier_error(Decimal("0.9999")) == "Choose a multiplier between 1.00x and 10.00x."
    assert (MULTIPLIER_MIN, MULTIPLIER_MAX) == (Decimal("1"), Decimal("10"))
