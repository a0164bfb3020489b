"""The HTML that pages write out in Python for speed (the transactions rows, the dashboard's rows, the filters'
selects) is the HTML Django's own template loop, filters and widgets print for the same values: an independent
reference, so every cell, number, date, link and escape is checked."""

from datetime import UTC, datetime
from decimal import Decimal
from html.parser import HTMLParser

import pytest
from django import forms
from django.template import Context, Template
from django.utils import timezone

from creditusage.dashboard import Figures, SubAccountFigures
from creditusage.forms import SubAccountSelect, WrittenOutSelect
from creditusage.selectors import AgencyLine, Line
from creditusage.templatetags.creditusage import subaccount_figure_rows, transaction_rows

NASTY = '<script>alert("x")</script> & =HYPERLINK("http://evil")'

REFERENCE_TRANSACTIONS = Template("""{% for line in lines %}
    <tr><td>{{ line.created_at|date:"Y-m-d H:i" }}</td><td>{{ line.kind }}</td><td>{{ line.product }}</td>
      <td>{{ line.description }}</td><td class="num">{{ line.units|default_if_none:""|floatformat:"-6" }}</td>
      <td class="num">{% if line.unit_price is not None %}${{ line.unit_price|floatformat:"-6" }}{% endif %}</td>
      <td class="num" data-amount="{{ line.amount }}">${{ line.amount|floatformat:2 }}</td>
      <td class="num">${{ line.balance_after|floatformat:2 }}</td><td>{{ line.reference }}</td>
      {% if for_agency %}<td class="num">{% if line.cost is not None %}${{ line.cost|floatformat:"-6" }}{% endif %}</td>
      <td class="num">{% if line.multiplier is not None %}{{ line.multiplier|floatformat:4 }}x{% endif %}</td>
      <td class="num">{% if line.profit is not None %}${{ line.profit|floatformat:"-6" }}{% endif %}</td>
      {% endif %}</tr>
  {% empty %}
    <tr><td colspan="{% if for_agency %}12{% else %}9{% endif %}">No transactions match this filter.</td></tr>
  {% endfor %}""")

REFERENCE_SUBACCOUNTS = Template("""{% for row in rows %}<tr data-subaccount="{{ row.subaccount_id }}">
<td>{{ row.name }}</td><td class="num">${{ row.current.revenue|floatformat:2 }}</td>
<td class="num">${{ row.current.cost|floatformat:2 }}</td><td class="num">${{ row.current.profit|floatformat:2 }}</td>
<td class="num">{% if row.current.margin is not None %}{{ row.current.margin }}%{% endif %}</td>
<td class="num">{% if row.revenue_change is not None %}{{ row.revenue_change }}%{% else %}new{% endif %}</td>
<td><a href="{% url 'creditusage:agency-details' row.subaccount_id %}">Details</a></td></tr>
{% empty %}<tr><td colspan="7">No usage in this period.</td></tr>{% endfor %}""")


class _Canonical(HTMLParser):
    """Tags with their attributes in name order, and texts; the whitespace between tags left out."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=False)
        self.parts: list[object] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.parts.append((tag, sorted(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(f"/{tag}")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.parts.append(data)

    def handle_entityref(self, name: str) -> None:
        self.parts.append(f"&{name};")

    def handle_charref(self, name: str) -> None:
        self.parts.append(f"&#{name};")


def _tags(html: object) -> list[object]:
    parser = _Canonical()
    parser.feed(str(html))
    parser.close()
    return parser.parts


def _lines(for_agency: bool) -> list[Line]:
    common = [
        dict(created_at=datetime(2026, 3, 1, 23, 59, 59, tzinfo=UTC), kind="Usage", product="SMS",
             description=NASTY, units=Decimal("3"), unit_price=Decimal("0.0079"), amount=Decimal("-0.0237"),
             balance_after=Decimal("19.976300"), reference="day 2026-03-01"),
        dict(created_at=datetime(2026, 3, 2, 0, 0, tzinfo=UTC), kind="Card payment", product="", description="",
             units=None, unit_price=None, amount=Decimal("1E+1"), balance_after=Decimal("29.976300"),
             reference="pi_3Nx<&>"),
        dict(created_at=datetime(2026, 3, 3, 12, 5, tzinfo=UTC), kind="Usage", product="Calls",
             description="2.5 minutes", units=Decimal("2.500000"), unit_price=Decimal("0.014500"),
             amount=Decimal("-0.036250"), balance_after=Decimal("-0.005"), reference=""),
    ]
    if not for_agency:
        return [Line(**fields) for fields in common]
    agency = [dict(cost=Decimal("0.0226"), multiplier=Decimal("1.05"), profit=Decimal("0.0011")),
              dict(cost=None, multiplier=None, profit=None),
              dict(cost=Decimal("0.0345"), multiplier=Decimal("1.0507"), profit=Decimal("0.00175"))]
    return [AgencyLine(**fields, **extra) for fields, extra in zip(common, agency, strict=True)]


@pytest.mark.parametrize("for_agency", [False, True])
@pytest.mark.parametrize("zone", ["UTC", "America/New_York"])
def test_transaction_rows_are_what_djangos_template_loop_prints(for_agency, zone):
    with timezone.override(zone):
        for lines in (_lines(for_agency), []):
            expected = REFERENCE_TRANSACTIONS.render(Context({"lines": lines, "for_agency": for_agency}))
            assert _tags(transaction_rows(lines, for_agency)) == _tags(expected)
    assert "&lt;script&gt;" in str(transaction_rows(_lines(for_agency), for_agency))


def test_dashboard_rows_are_what_djangos_template_loop_prints():
    rows = [SubAccountFigures(subaccount_id=7, name=NASTY, current=Figures(Decimal("10.005"), Decimal("9.5")),
                              previous=Figures(Decimal("8"), Decimal("1"))),
            SubAccountFigures(subaccount_id=12345, name="New client", current=Figures(Decimal("0"), Decimal("2.25")),
                              previous=Figures(Decimal("0"), Decimal("0"))),
            SubAccountFigures(subaccount_id=40, name="Refunded", current=Figures(Decimal("-3.335"), Decimal("0")),
                              previous=Figures(Decimal("3"), Decimal("0")))]
    for shown in (rows, []):
        expected = REFERENCE_SUBACCOUNTS.render(Context({"rows": shown}))
        assert _tags(subaccount_figure_rows(shown)) == _tags(expected)


class _StockForm(forms.Form):
    product = forms.ChoiceField(required=False, choices=[("", "All"), ("sms", "SMS"), ("x", "<b>&</b>")])
    ids = forms.MultipleChoiceField(required=False, choices=[("1", "One"), ("3", "Three & <co>")])


class _WrittenOutForm(_StockForm):
    product = forms.ChoiceField(required=False, choices=_StockForm.base_fields["product"].choices,
                                widget=WrittenOutSelect)
    ids = forms.MultipleChoiceField(required=False, choices=_StockForm.base_fields["ids"].choices,
                                    widget=SubAccountSelect)


@pytest.mark.parametrize("data", [None, {}, {"product": "sms"}, {"product": "nope"}, {"ids": ["1", "3"]},
                                  {"ids": ["3"], "product": "x"}])
def test_written_out_selects_are_djangos_selects(data):
    from django.http import QueryDict

    query = None
    if data is not None:
        query = QueryDict(mutable=True)
        for key, value in data.items():
            query.setlist(key, value if isinstance(value, list) else [value])
    stock, ours = _StockForm(query), _WrittenOutForm(query)
    for name in ("product", "ids"):
        assert _tags(ours[name]) == _tags(stock[name]), name
