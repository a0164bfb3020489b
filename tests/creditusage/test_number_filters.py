"""The details pages' fast `fixed` and `minute` filters print exactly what Django's floatformat and date filters
print, for every amount a ledger can hold (NUMERIC(18,6)), whole numbers, negatives, values that round to zero, and
for anything else (None, "") by deferring to Django's own."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from django.template import Context, Template
from hypothesis import given, settings
from hypothesis import strategies as st

PLACES = ["2", "4", "-6", "6", "-2"]
LEDGER_AMOUNTS = st.decimals(min_value=Decimal("-999999999999.999999"), max_value=Decimal("999999999999.999999"),
                             places=6, allow_nan=False, allow_infinity=False)


def _both(value: object, ours: str, djangos: str) -> tuple[str, str]:
    context = Context({"v": value})
    return (Template("{% load creditusage %}" + ours).render(context), Template(djangos).render(context))


@settings(max_examples=300, deadline=None)
@given(value=LEDGER_AMOUNTS | st.integers(min_value=-10**12, max_value=10**12), places=st.sampled_from(PLACES))
def test_fixed_prints_what_floatformat_prints(value, places):
    ours, djangos = _both(value, f'{{{{ v|fixed:"{places}" }}}}', f'{{{{ v|floatformat:"{places}" }}}}')
    assert ours == djangos


def test_fixed_on_edges_and_non_numbers():
    for value in [Decimal("-0.001"), Decimal("-0.005"), Decimal("0.005"), Decimal("2.000000"), Decimal("-3"),
                  Decimal("1E+3"), Decimal("0E-6"), Decimal("-0"), Decimal("NaN"), Decimal("Infinity"), None, "",
                  "abc", 1.25, True]:
        for places in PLACES:
            ours, djangos = _both(value, f'{{{{ v|fixed:"{places}" }}}}', f'{{{{ v|floatformat:"{places}" }}}}')
            assert ours == djangos, (value, places)


@settings(max_examples=200, deadline=None)
@given(when=st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(9999, 12, 31), timezones=st.just(UTC)))
def test_minute_prints_what_the_date_filter_prints(when):
    ours, djangos = _both(when, "{{ v|minute }}", '{{ v|date:"Y-m-d H:i" }}')
    assert ours == djangos


def test_minute_on_non_datetimes():
    for value in [None, "", "2026-01-02"]:
        ours, djangos = _both(value, "{{ v|minute }}", '{{ v|date:"Y-m-d H:i" }}')
        assert ours == djangos, value
