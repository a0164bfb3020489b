"""Charts drawn on the server as inline SVG (no script, no CDN)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from agencies.plans import Product

COLOURS = {Product.SMS: "#2f6fde", Product.MMS: "#8e44ad", Product.CALLS: "#16a085",
           Product.PHONE_NUMBERS: "#e67e22", Product.OTHER: "#7f8c8d"}
WIDTH, HEIGHT, LEFT, BOTTOM = 720, 220, 56, 24


def daily_stacked_svg(*, days: dict[date, dict[str, Decimal]], start: date, end: date,
                      title: str = "Daily usage by product") -> SafeString:
    span = (end - start).days + 1
    if span <= 0 or span > 400:
        span = max(1, min(span, 400))
    totals = [sum((max(v, Decimal(0)) for v in days.get(start + timedelta(days=i), {}).values()), Decimal(0))
              for i in range(span)]
    top = max(totals, default=Decimal(0)) or Decimal(1)
    plot_w, plot_h = WIDTH - LEFT - 8, HEIGHT - BOTTOM - 8
    bar_w = plot_w / span
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="100%" data-testid="daily-chart"><title>{escape(title)}</title>',
             f'<text x="4" y="14" font-size="11">${top:.2f}</text>',
             f'<text x="4" y="{HEIGHT - BOTTOM}" font-size="11">$0</text>',
             f'<line x1="{LEFT}" y1="{HEIGHT - BOTTOM}" x2="{WIDTH - 8}" y2="{HEIGHT - BOTTOM}" stroke="#999"/>']
    labels = {product: escape(product.label) for product in Product}  # once, not once a bar
    width = f"{max(bar_w - 1, 1):.1f}"
    for i in range(span):
        day = start + timedelta(days=i)
        values = days.get(day)
        if not values:
            continue
        y = float(HEIGHT - BOTTOM)
        for product in Product:
            value = values.get(product.value)
            if value is None or value <= 0:
                continue
            h = float(value / top) * plot_h
            y -= h
            parts.append(f'<rect x="{LEFT + i * bar_w:.1f}" y="{y:.1f}" width="{width}" '
                         f'height="{h:.1f}" fill="{COLOURS[product]}"><title>{day.isoformat()} '
                         f'{labels[product]}: ${value:.2f}</title></rect>')
    parts.append(f'<text x="{LEFT}" y="{HEIGHT - 6}" font-size="11">{start:%Y-%m-%d}</text>')
    parts.append(f'<text x="{WIDTH - 8}" y="{HEIGHT - 6}" font-size="11" text-anchor="end">{end:%Y-%m-%d}</text>')
    parts.append("</svg>")
    legend = "".join(f'<span class="legend"><span style="display:inline-block;width:10px;height:10px;'
                     f'background:{COLOURS[p]}"></span> {escape(p.label)}</span> ' for p in Product)
    return mark_safe("".join(parts) + f"<p>{legend}</p>")  # noqa: S308 — every text part is escaped above
