"""Twilio's JSON shapes: usage records, accounts, errors; request helpers."""

from __future__ import annotations

import base64
import binascii
import functools
import json
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from devservices.fake_twilio.categories import API, _category_meta
from devservices.fake_twilio.state import Account, Leaf


def _num(value: Decimal) -> str:
    text = format(value, "f")
    return text


def _record_json(sid: str, day: date, category: str, leaf: Leaf, as_of: str) -> dict[str, Any]:
    meta = _category_meta(category)
    d = day.isoformat()
    base = f"{API}/Accounts/{sid}/Usage/Records"
    q = f"?Category={category}"
    return {
        "account_sid": sid,
        "api_version": "2010-04-01",
        "as_of": as_of,
        "category": category,
        "count": _num(leaf.count),
        "count_unit": meta.count_unit,
        "description": meta.description,
        "end_date": d,
        "price": _num(leaf.price),
        "price_unit": "usd",
        "start_date": d,
        "subresource_uris": {
            "all_time": f"{base}/AllTime.json{q}",
            "today": f"{base}/Today.json{q}",
            "yesterday": f"{base}/Yesterday.json{q}",
            "this_month": f"{base}/ThisMonth.json{q}",
            "last_month": f"{base}/LastMonth.json{q}",
            "daily": f"{base}/Daily.json{q}",
            "monthly": f"{base}/Monthly.json{q}",
            "yearly": f"{base}/Yearly.json{q}",
        },
        "uri": f"{base}/Daily.json{q}&StartDate={d}&EndDate={d}",
        "usage": _num(leaf.usage),
        "usage_unit": meta.usage_unit,
    }


@functools.lru_cache(maxsize=4096)
def _record_template(category: str) -> str:
    """The record's JSON as a %-format string: rendering one record is then a single C-level call."""
    fields = ("sid", "day", "count", "usage", "price", "as_of")
    marks = {name: f"@@{name}@@" for name in fields}
    leaf = Leaf(Decimal(0), Decimal(0), Decimal(0))
    raw = _record_json(marks["sid"], date(2000, 1, 1), category, leaf, marks["as_of"])
    raw.update(count=marks["count"], usage=marks["usage"], price=marks["price"])
    text = json.dumps(raw).replace("%", "%%").replace("2000-01-01", marks["day"])
    for name, mark in marks.items():
        text = text.replace(mark, f"%({name})s")
    return text


def _record_text(sid_json: str, day: date, category: str, leaf: Leaf, as_of: str) -> str:
    return _record_template(category) % {
        "sid": sid_json, "day": day.isoformat(), "count": _num(leaf.count), "usage": _num(leaf.usage),
        "price": _num(leaf.price), "as_of": as_of}


def _malformed(record: dict[str, Any], fault_field: str) -> dict[str, Any]:
    bad = json.loads(json.dumps(record))
    if fault_field == "price":
        bad["price"] = "not-a-number"
    elif fault_field == "usage":
        bad["usage"] = "-5"
    elif fault_field == "category":
        bad["category"] = "totally-unknown-category"
    elif fault_field == "date":
        bad["start_date"] = bad["end_date"] = "2025-13-45"
    elif fault_field == "count":
        bad["count"] = "many"
    return bad


# --- Helpers -------------------------------------------------------------------------------------

def twilio_error(status: int, code: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"code": code, "message": message, "more_info": f"https://www.twilio.com/docs/errors/{code}",
            "status": status}
    return web.json_response(body, status=status, headers=headers)


def _rfc2822(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC)).replace("-0000", "+0000")


def _account_json(acct: Account, *, with_token: bool = False) -> dict[str, Any]:
    uri = f"{API}/Accounts/{acct.sid}"
    body: dict[str, Any] = {
        "date_created": _rfc2822(acct.created),
        "date_updated": _rfc2822(acct.updated),
        "friendly_name": acct.friendly_name,
        "owner_account_sid": acct.parent_sid or acct.sid,
        "sid": acct.sid,
        "status": acct.status,
        "subresource_uris": {
            name: f"{uri}/{path}.json" for name, path in [
                ("addresses", "Addresses"), ("calls", "Calls"),
                ("incoming_phone_numbers", "IncomingPhoneNumbers"),
                ("messages", "Messages"), ("usage", "Usage"), ("balance", "Balance"),
            ]
        },
        "type": "Full",
        "uri": f"{uri}.json",
    }
    if with_token:
        body["auth_token"] = acct.auth_token
    return body


def _parse_day(value: str, today: date) -> date:
    # Twilio also accepts offsets relative to today such as "-30days" / "+1days".
    if value.endswith("days") and value[:1] in "+-":
        return today + timedelta(days=int(value[:-4]))
    return date.fromisoformat(value)


def _basic_auth(request: web.Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if not header.startswith("Basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password

