"""The daily chart: one bar per product and day with usage, as tall as its share of the busiest day."""

import re
from datetime import date
from decimal import Decimal

from creditusage.charts import BOTTOM, HEIGHT, daily_stacked_svg


def test_a_bar_per_product_and_day_with_usage_scaled_to_the_busiest_day():
    days = {date(2026, 3, 1): {"sms": Decimal("2.00"), "calls": Decimal("6.00")},
            date(2026, 3, 3): {"sms": Decimal("4.00"), "mms": Decimal("0"), "other": Decimal("-1.00")}}
    svg = str(daily_stacked_svg(days=days, start=date(2026, 3, 1), end=date(2026, 3, 3)))
    bars = re.findall(r'<rect x="([\d.]+)" y="([\d.]+)" width="[\d.]+" height="([\d.]+)" fill="[^"]+">'
                      r"<title>([^<]+)</title>", svg)
    assert [title for *_, title in bars] == ["2026-03-01 SMS: $2.00", "2026-03-01 Calls: $6.00",
                                             "2026-03-03 SMS: $4.00"]
    plot = HEIGHT - BOTTOM - 8
    heights = [float(height) for _, _, height, _ in bars]
    assert heights == [round(plot * 2 / 8, 1), round(plot * 6 / 8, 1), round(plot * 4 / 8, 1)]
    # stacked: the day's second bar sits on its first
    assert float(bars[1][1]) == round(HEIGHT - BOTTOM - plot * 2 / 8 - plot * 6 / 8, 1)
    assert ">$8.00</text>" in svg and "<script" not in svg


def test_the_title_is_escaped_and_an_empty_range_draws_no_bar():
    svg = str(daily_stacked_svg(days={}, start=date(2026, 3, 1), end=date(2026, 3, 31), title="<b>x</b>"))
    assert "<rect" not in svg and "&lt;b&gt;x&lt;/b&gt;" in svg
