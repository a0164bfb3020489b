"""A local, stateful fake of the parts of Twilio's REST API that Rebill uses.

Speaks Twilio's real JSON shapes (2010-04-01 API):

* ``GET  /2010-04-01/Accounts/{Sid}/Usage/Records/Daily.json`` (paged, parents roll up leaves)
* ``GET  /2010-04-01/Accounts/{Sid}.json`` / ``POST`` with ``Status=`` (suspend / resume / close)
* ``GET  /2010-04-01/Accounts/{Sid}/Balance.json`` (the account's currency)
* ``POST /2010-04-01/Accounts.json`` with ``FriendlyName=`` (create a subaccount under the caller)

plus an unauthenticated control API under ``/_fake/`` for tests, the demo and the benchmark
(accounts, usage, bulk generation, fault injection, request log, reset).

Run: ``python -m devservices.fake_twilio --port 8765 [--demo]`` (binds 127.0.0.1 only).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import functools
import hashlib
import json
import urllib.request
import zlib
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.utils import format_datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from devservices.processes import ServiceProcess, free_port, python_module

API = "/2010-04-01"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50


# --- Category tree -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Category:
    name: str
    description: str
    count_unit: str
    usage_unit: str
    parents: tuple[str, ...]  # every ancestor that rolls this category up, nearest first
    unit_price: Decimal = Decimal("0")  # only used by the generators


# Leaves the fake generates. ``totalprice`` sums the price of every leaf (and its usage is that price).
LEAVES: dict[str, Category] = {c.name: c for c in [
    Category("sms-inbound-longcode", "Inbound Longcode SMS", "messages", "messages",
             ("sms-inbound", "sms"), Decimal("0.0079")),
    Category("sms-outbound-longcode", "Outbound Longcode SMS", "messages", "messages",
             ("sms-outbound", "sms"), Decimal("0.0079")),
    Category("sms-inbound-tollfree", "Inbound Tollfree SMS", "messages", "messages",
             ("sms-inbound", "sms"), Decimal("0.0079")),
    Category("sms-outbound-tollfree", "Outbound Tollfree SMS", "messages", "messages",
             ("sms-outbound", "sms"), Decimal("0.0079")),
    Category("mms-inbound", "Inbound MMS", "messages", "messages", ("mms",), Decimal("0.0200")),
    Category("mms-outbound", "Outbound MMS", "messages", "messages", ("mms",), Decimal("0.0200")),
    Category("calls-inbound-local", "Inbound Local Calls", "calls", "minutes",
             ("calls-inbound", "calls"), Decimal("0.0085")),
    Category("calls-inbound-tollfree", "Inbound Tollfree Calls", "calls", "minutes",
             ("calls-inbound", "calls"), Decimal("0.0220")),
    Category("calls-outbound", "Outbound Calls", "calls", "minutes", ("calls",), Decimal("0.0140")),
    Category("phonenumbers-local", "Local Phone Numbers", "phone-numbers", "phone-numbers",
             ("phonenumbers",), Decimal("1.15")),
    Category("phonenumbers-tollfree", "Toll Free Phone Numbers", "phone-numbers", "phone-numbers",
             ("phonenumbers",), Decimal("2.15")),
    Category("sms-messages-carrierfees", "Carrier Fees for SMS Messages", "messages", "messages",
             (), Decimal("0.0030")),
]}

# Finer categories Twilio reports under a category we bill as a leaf (``mms-inbound`` rolls up
# ``mms-inbound-longcode``, ...). Never generated; set them explicitly and the fake serves both levels.
FINER: dict[str, Category] = {c.name: c for c in [
    Category("mms-inbound-longcode", "Inbound Longcode MMS", "messages", "messages", ("mms-inbound", "mms")),
    Category("mms-inbound-tollfree", "Inbound Tollfree MMS", "messages", "messages", ("mms-inbound", "mms")),
    Category("mms-outbound-longcode", "Outbound Longcode MMS", "messages", "messages", ("mms-outbound", "mms")),
    Category("mms-outbound-tollfree", "Outbound Tollfree MMS", "messages", "messages", ("mms-outbound", "mms")),
]}

PARENTS: dict[str, Category] = {c.name: c for c in [
    Category("sms", "SMS Messages", "messages", "messages", ()),
    Category("sms-inbound", "Inbound SMS", "messages", "messages", ()),
    Category("sms-outbound", "Outbound SMS", "messages", "messages", ()),
    Category("mms", "MMS Messages", "messages", "messages", ()),
    Category("calls", "Voice Minutes", "calls", "minutes", ()),
    Category("calls-inbound", "Inbound Voice Minutes", "calls", "minutes", ()),
    Category("phonenumbers", "Phone Numbers", "phone-numbers", "phone-numbers", ()),
    Category("totalprice", "Total Price", "", "usd", ()),
]}

DAILY_WEIGHT: dict[str, int] = {  # typical daily volume per leaf, used by the generators
    "sms-inbound-longcode": 40, "sms-outbound-longcode": 60, "sms-inbound-tollfree": 8,
    "sms-outbound-tollfree": 12, "mms-inbound": 4, "mms-outbound": 6, "calls-inbound-local": 25,
    "calls-inbound-tollfree": 5, "calls-outbound": 20, "phonenumbers-local": 0,
    "phonenumbers-tollfree": 0, "sms-messages-carrierfees": 60,
}


def _category_meta(name: str) -> Category:
    return LEAVES.get(name) or FINER.get(name) or PARENTS.get(name) or Category(name, name, "", "", ())


# --- State ---------------------------------------------------------------------------------------

@dataclass
class Leaf:
    count: Decimal
    usage: Decimal
    price: Decimal


@dataclass
class Fault:
    kind: str  # "status" | "sleep" | "malformed"
    remaining: int
    status: int = 500
    retry_after: str | None = None
    seconds: float = 0.0
    field: str = "price"


@dataclass
class Account:
    sid: str
    auth_token: str
    parent_sid: str | None = None
    friendly_name: str = ""
    status: str = "active"
    demo: bool = False
    created: datetime = field(default_factory=lambda: datetime.now(UTC))
    updated: datetime = field(default_factory=lambda: datetime.now(UTC))
    # Explicit leaf values keyed by (day, category); they override any generated value.
    usage: dict[tuple[date, str], Leaf] = field(default_factory=dict)
    # Bulk generator: (first day, number of days, seed); values computed on demand, never stored.
    bulk: tuple[date, int, int] | None = None
    faults: deque[Fault] = field(default_factory=deque)
    malformed: deque[Fault] = field(default_factory=deque)
    overlaps: int = 0  # next pages that repeat the previous page's last record
    unlisted: set[tuple[date, str]] = field(default_factory=set)  # usage Twilio bills but does not list
    currency: str = "usd"  # what the account is billed in: usage records' price_unit, Balance's currency


class State:
    def __init__(self, *, demo: bool) -> None:
        self.demo = demo
        self.accounts: dict[str, Account] = {}
        self.requests: deque[dict[str, Any]] = deque(maxlen=200_000)

    def reset(self) -> None:
        self.accounts.clear()
        self.requests.clear()


def _hash(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode())


def _generated_leaf(sid: str, category: str, day: date, seed: int, fraction: float = 1.0) -> Leaf:
    """Deterministic plausible usage for one leaf on one day (``fraction`` of the day elapsed)."""
    meta = LEAVES[category]
    h = _hash(sid, category, day.isoformat(), seed)
    if category.startswith("phonenumbers"):
        # Numbers are billed monthly, on one day of the month.
        if day.day != 1 + h % 28:
            return Leaf(Decimal(0), Decimal(0), Decimal(0))
        count = Decimal(1 + h % 3)
        return Leaf(count, count, count * meta.unit_price)
    weight = DAILY_WEIGHT[category]
    full = weight // 2 + h % (weight + 1)
    count = Decimal(int(full * fraction))
    usage = count
    if meta.usage_unit == "minutes":
        usage = count * (1 + (h >> 8) % 4)  # whole minutes, rounded up per call
    return Leaf(count, usage, (usage * meta.unit_price).quantize(Decimal("0.0001")))


def _leaves_for(state: State, acct: Account, start: date, end: date) -> dict[tuple[date, str], Leaf]:
    leaves: dict[tuple[date, str], Leaf] = {}
    if acct.bulk is not None:
        first, days, seed = acct.bulk
        day = max(first, start)
        last = min(first + timedelta(days=days - 1), end)
        while day <= last:
            for cat in LEAVES:
                leaves[(day, cat)] = _generated_leaf(acct.sid, cat, day, seed)
            day += timedelta(days=1)
    if acct.demo and state.demo:
        now = datetime.now(UTC)
        today = now.date()
        elapsed = (now - datetime(today.year, today.month, today.day, tzinfo=UTC)).total_seconds() / 86400
        for back in range(3):
            day = today - timedelta(days=back)
            if start <= day <= end:
                for cat in LEAVES:
                    leaves[(day, cat)] = _generated_leaf(acct.sid, cat, day, 0, elapsed if back == 0 else 1.0)
    for key, leaf in acct.usage.items():
        if start <= key[0] <= end:
            leaves[key] = leaf
    return leaves


def _with_parents(leaves: dict[tuple[date, str], Leaf]) -> dict[tuple[date, str], Leaf]:
    """Add Twilio's roll-up categories: each parent sums its leaves; totalprice sums every price."""
    out = dict(leaves)
    days = {day for day, _ in leaves}
    for day in days:
        for parent in PARENTS:
            out.setdefault((day, parent), Leaf(Decimal(0), Decimal(0), Decimal(0)))
    for (day, cat), leaf in leaves.items():
        for parent in _category_meta(cat).parents:
            # A new Leaf each time: a parent may be a category stored as a leaf (mms-inbound), never mutated.
            p = out.get((day, parent)) or Leaf(Decimal(0), Decimal(0), Decimal(0))
            out[(day, parent)] = Leaf(p.count + leaf.count, p.usage + leaf.usage, p.price + leaf.price)
        total = out[(day, "totalprice")]
        total.usage += leaf.price
        total.price += leaf.price
    return out


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


# --- Twilio API handlers -------------------------------------------------------------------------

class FakeTwilio:
    def __init__(self, state: State) -> None:
        self.state = state

    def _log(self, request: web.Request, account: str | None, auth_user: str | None) -> None:
        self.state.requests.append({
            "method": request.method,
            "path": request.path,
            "query": dict(request.query),
            "account": account,
            "auth_user": auth_user,
            "time": datetime.now(UTC).isoformat(),
        })

    async def _apply_faults(self, acct: Account | None) -> web.Response | None:
        if acct is None:
            return None
        while acct.faults:
            fault = acct.faults[0]
            fault.remaining -= 1
            if fault.remaining <= 0:
                acct.faults.popleft()
            if fault.kind == "sleep":
                await asyncio.sleep(fault.seconds)
                return None
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else None
            code, message = {
                429: (20429, "Too Many Requests"), 500: (20500, "Internal Server Error"),
                502: (20500, "Bad Gateway"), 503: (20503, "Service Unavailable"),
            }.get(fault.status, (fault.status * 100, "Error"))
            return twilio_error(fault.status, code, message, headers)
        return None

    def _authenticate(
        self, request: web.Request, target_sid: str | None
    ) -> tuple[Account | None, web.Response | None]:
        """Return (caller, error). The caller may act on itself or on its direct subaccounts."""
        creds = _basic_auth(request)
        caller = self.state.accounts.get(creds[0]) if creds else None
        if creds is None or caller is None or caller.auth_token != creds[1] or caller.status == "closed":
            return None, twilio_error(401, 20003, "Authenticate")
        if target_sid is not None and target_sid != caller.sid:
            target = self.state.accounts.get(target_sid)
            if target is None or target.parent_sid != caller.sid:
                message = f"The requested resource {request.path} was not found"
                return caller, twilio_error(404, 20404, message)
        return caller, None

    async def _target_account(self, request: web.Request) -> tuple[Account | None, web.Response | None]:
        """Log the request, apply the account's injected faults, then authenticate: (account, refusal)."""
        sid = request.match_info["sid"]
        creds = _basic_auth(request)
        self._log(request, sid, creds[0] if creds else None)
        acct = self.state.accounts.get(sid)
        if (fault := await self._apply_faults(acct)) is not None:
            return acct, fault
        _, error = self._authenticate(request, sid)
        return acct, error

    async def daily(self, request: web.Request) -> web.Response:
        acct, refusal = await self._target_account(request)
        if refusal is not None:
            return refusal
        assert acct is not None
        sid = acct.sid
        q = request.query
        today = datetime.now(UTC).date()
        try:
            end = _parse_day(q["EndDate"], today) if q.get("EndDate") else today
            start = _parse_day(q["StartDate"], today) if q.get("StartDate") else end - timedelta(days=30)
        except ValueError:
            return twilio_error(400, 20001, "Invalid date format. Expected YYYY-MM-DD")
        try:
            page_size = int(q.get("PageSize", DEFAULT_PAGE_SIZE))
            page = int(q.get("Page", 0))
        except ValueError:
            return twilio_error(400, 20001, "Invalid PageSize or Page")
        if page_size > MAX_PAGE_SIZE or page_size < 1:
            return twilio_error(400, 20001, f"PageSize must be between 1 and {MAX_PAGE_SIZE}")
        category = q.get("Category")

        leaves = _leaves_for(self.state, acct, start, end)
        # Twilio's default: a main account's usage includes every subaccount's (IncludeSubaccounts=true).
        if q.get("IncludeSubaccounts", "true").lower() != "false":
            for child in self.state.accounts.values():
                if child.parent_sid == acct.sid:
                    for key, leaf in _leaves_for(self.state, child, start, end).items():
                        mine = leaves.get(key)
                        leaves[key] = leaf if mine is None else Leaf(
                            mine.count + leaf.count, mine.usage + leaf.usage, mine.price + leaf.price)
        rows = _with_parents(leaves)
        keys = sorted(k for k in rows if (category is None or k[1] == category) and k not in acct.unlisted)
        # PageToken encodes the last key served, so paging stays exact even if rows appear meanwhile.
        token = q.get("PageToken")
        offset = page * page_size
        if token and token.startswith("PA"):
            last = token[2:].split("_", 1)
            if len(last) == 2:
                marker = (date.fromisoformat(last[0]), last[1])
                offset = next((i for i, k in enumerate(keys) if k > marker), len(keys))
        if acct.overlaps and offset > 0:
            # Offset paging while a row appears: the next page starts with the last record of the previous one.
            acct.overlaps -= 1
            offset -= 1
        chunk = keys[offset:offset + page_size]
        as_of = datetime.now(UTC).replace(microsecond=0).isoformat()
        sid_json = json.dumps(sid)[1:-1]
        records = [_record_text(sid_json, day, cat, rows[(day, cat)], as_of) for day, cat in chunk]
        if acct.currency != "usd":
            records = [r.replace('"price_unit": "usd"', f'"price_unit": "{acct.currency}"') for r in records]
        if acct.malformed and records:
            broken = acct.malformed[0]
            broken.remaining -= 1
            if broken.remaining <= 0:
                acct.malformed.popleft()
            # Break a copy of a leaf (a broken parent would be ignored by any correct client anyway).
            day, cat = next((k for k in chunk if k[1] in LEAVES), chunk[0])
            victim = _record_json(sid, day, cat, rows[(day, cat)], as_of)
            records.insert(len(records) // 2, json.dumps(_malformed(victim, broken.field)))

        path = f"{API}/Accounts/{sid}/Usage/Records/Daily.json"
        filters = {k: v for k, v in (("Category", category), ("StartDate", start.isoformat()),
                                     ("EndDate", end.isoformat()),
                                     ("IncludeSubaccounts", q.get("IncludeSubaccounts"))) if v}

        def uri(page_no: int, page_token: str | None) -> str:
            params = {**filters, "PageSize": page_size, "Page": page_no}
            if page_token:
                params["PageToken"] = page_token
            return f"{path}?{urlencode(params)}"

        has_next = offset + page_size < len(keys)
        next_token = f"PA{chunk[-1][0].isoformat()}_{chunk[-1][1]}" if chunk else None
        body = {
            "end": offset + max(len(chunk) - 1, 0),
            "first_page_uri": uri(0, None),
            "next_page_uri": uri(page + 1, next_token) if has_next else None,
            "page": page,
            "page_size": page_size,
            "previous_page_uri": uri(page - 1, None) if page > 0 else None,
            "start": offset,
            "uri": f"{path}?{request.query_string}" if request.query_string else path,
            "usage_records": "@@RECORDS@@",
        }
        text = json.dumps(body).replace('"@@RECORDS@@"', "[" + ", ".join(records) + "]")
        return web.Response(body=text.encode(), content_type="application/json")

    async def account(self, request: web.Request) -> web.Response:
        acct, refusal = await self._target_account(request)
        if refusal is not None:
            return refusal
        assert acct is not None
        if request.method == "POST":
            form = await request.post()
            status = form.get("Status")
            if status is not None:
                status = str(status)
                if status not in ("active", "suspended", "closed"):
                    return twilio_error(400, 20001, f"Invalid Status: {status}")
                if acct.status == "closed" and status != "closed":
                    return twilio_error(400, 20001, "A closed account cannot be reopened")
                acct.status = str(status)
            if (name := form.get("FriendlyName")) is not None:
                acct.friendly_name = str(name)
            acct.updated = datetime.now(UTC)
        return web.json_response(_account_json(acct))

    async def balance(self, request: web.Request) -> web.Response:
        acct, refusal = await self._target_account(request)
        if refusal is not None:
            return refusal
        assert acct is not None
        return web.json_response({"account_sid": acct.sid, "balance": "20.00", "currency": acct.currency.upper()})

    async def create_account(self, request: web.Request) -> web.Response:
        creds = _basic_auth(request)
        self._log(request, None, creds[0] if creds else None)
        caller, error = self._authenticate(request, None)
        if error is not None:
            return error
        assert caller is not None
        if (fault := await self._apply_faults(caller)) is not None:
            return fault
        if caller.parent_sid is not None:
            return twilio_error(403, 20005, "Subaccounts cannot create subaccounts")
        form = await request.post()
        n = len(self.state.accounts)
        sid = "AC" + hashlib.md5(f"{caller.sid}:{n}:{datetime.now(UTC).isoformat()}".encode()).hexdigest()  # noqa: S324
        token = hashlib.sha256(f"token:{sid}".encode()).hexdigest()[:32]
        name = form.get("FriendlyName") or f"SubAccount Created at {_rfc2822(datetime.now(UTC))}"
        acct = Account(sid=sid, auth_token=token, parent_sid=caller.sid, friendly_name=str(name),
                       demo=caller.demo)
        self.state.accounts[sid] = acct
        return web.json_response(_account_json(acct, with_token=True), status=201)


# --- Control API ---------------------------------------------------------------------------------

class Control:
    def __init__(self, state: State) -> None:
        self.state = state

    async def reset(self, request: web.Request) -> web.Response:
        self.state.reset()
        return web.json_response({"ok": True})

    async def put_account(self, request: web.Request) -> web.Response:
        data = await request.json()
        if data.get("demo") and not self.state.demo:
            error = {"error": "demo accounts need the server started with --demo"}
            return web.json_response(error, status=400)
        acct = Account(sid=data["sid"], auth_token=data["auth_token"], parent_sid=data.get("parent_sid"),
                       friendly_name=data.get("friendly_name") or data["sid"],
                       status=data.get("status") or "active", demo=bool(data.get("demo", False)),
                       currency=str(data.get("currency") or "usd").lower())
        self.state.accounts[acct.sid] = acct
        return web.json_response(self._summary(acct))

    def _summary(self, acct: Account) -> dict[str, Any]:
        return {"sid": acct.sid, "parent_sid": acct.parent_sid, "friendly_name": acct.friendly_name,
                "currency": acct.currency,
                "status": acct.status, "demo": acct.demo}

    def _get(self, request: web.Request) -> Account:
        acct = self.state.accounts.get(request.match_info["sid"])
        if acct is None:
            body = json.dumps({"error": "no such account"})
            raise web.HTTPNotFound(text=body, content_type="application/json")
        return acct

    async def get_account(self, request: web.Request) -> web.Response:
        return web.json_response(self._summary(self._get(request)))

    async def set_usage(self, request: web.Request) -> web.Response:
        acct = self._get(request)
        data = await request.json()
        records = data["records"] if isinstance(data, dict) else data
        if isinstance(data, dict) and data.get("replace_all"):
            acct.usage.clear()
        for rec in records:
            if rec["category"] in PARENTS:
                error = {"error": f"{rec['category']} is a parent; parents are computed"}
                return web.json_response(error, status=400)
            key = (date.fromisoformat(rec["date"]), rec["category"])
            acct.usage[key] = Leaf(
                Decimal(str(rec.get("count", 0))), Decimal(str(rec.get("usage", rec.get("count", 0)))),
                Decimal(str(rec.get("price", "0"))))
            if rec.get("unlisted"):  # in totalprice, but never served as a record of its own
                acct.unlisted.add(key)
            else:
                acct.unlisted.discard(key)
        return web.json_response({"ok": True, "records": len(acct.usage)})

    async def faults(self, request: web.Request) -> web.Response:
        acct = self._get(request)
        data = await request.json()
        kind = data["kind"]
        fault = Fault(kind=kind, remaining=int(data.get("count", 1)), status=int(data.get("status", 500)),
                      retry_after=None if data.get("retry_after") is None else str(data["retry_after"]),
                      seconds=float(data.get("seconds", 0)), field=data.get("field", "price"))
        if kind == "malformed":
            acct.malformed.append(fault)
        elif kind == "overlap":
            acct.overlaps += fault.remaining
        elif kind in ("status", "sleep"):
            acct.faults.append(fault)
        else:
            return web.json_response({"error": f"unknown fault kind {kind}"}, status=400)
        return web.json_response({"ok": True})

    async def clear_faults(self, request: web.Request) -> web.Response:
        acct = self._get(request)
        acct.faults.clear()
        acct.malformed.clear()
        acct.overlaps = 0
        return web.json_response({"ok": True})

    async def bulk(self, request: web.Request) -> web.Response:
        data = await request.json()
        seed = int(data.get("seed", 0))
        start = date.fromisoformat(data["start_date"])
        days = int(data["days"])
        token = data.get("auth_token", "bulk-token")
        parent = data.get("parent_sid")
        sids = []
        for i in range(int(data["accounts"])):
            sid = "AC" + hashlib.md5(f"bulk:{seed}:{i}".encode()).hexdigest()  # noqa: S324
            self.state.accounts[sid] = Account(sid=sid, auth_token=token, parent_sid=parent,
                                               friendly_name=f"Bulk {i}", bulk=(start, days, seed))
            sids.append(sid)
        records_per_account = days * (len(LEAVES) + len(PARENTS))
        return web.json_response({"sids": sids, "records_per_account": records_per_account,
                                  "leaf_records_per_account": days * len(LEAVES)})

    async def requests(self, request: web.Request) -> web.Response:
        if request.method == "DELETE":
            self.state.requests.clear()
            return web.json_response({"ok": True})
        account = request.query.get("account")
        entries = [r for r in self.state.requests if account is None or r["account"] == account]
        return web.json_response({"requests": entries})


def make_app(*, demo: bool = False) -> web.Application:
    state = State(demo=demo)
    api = FakeTwilio(state)
    ctl = Control(state)
    app = web.Application()
    app["state"] = state
    app.router.add_get(f"{API}/Accounts/{{sid}}/Usage/Records/Daily.json", api.daily)
    app.router.add_route("GET", f"{API}/Accounts/{{sid}}.json", api.account)
    app.router.add_get(f"{API}/Accounts/{{sid}}/Balance.json", api.balance)
    app.router.add_route("POST", f"{API}/Accounts/{{sid}}.json", api.account)
    app.router.add_post(f"{API}/Accounts.json", api.create_account)
    app.router.add_post("/_fake/reset", ctl.reset)
    app.router.add_post("/_fake/accounts", ctl.put_account)
    app.router.add_get("/_fake/accounts/{sid}", ctl.get_account)
    app.router.add_post("/_fake/accounts/{sid}/usage", ctl.set_usage)
    app.router.add_post("/_fake/accounts/{sid}/faults", ctl.faults)
    app.router.add_delete("/_fake/accounts/{sid}/faults", ctl.clear_faults)
    app.router.add_post("/_fake/bulk", ctl.bulk)
    app.router.add_get("/_fake/requests", ctl.requests)
    app.router.add_delete("/_fake/requests", ctl.requests)
    return app


# --- Process + control helpers -------------------------------------------------------------------

def start_fake_twilio(
    port: int | None = None, *, demo: bool = False, log_path: str | None = None
) -> ServiceProcess:
    """Start the fake in a child process and wait until it listens; ``.url`` is its base URL."""
    port = port or free_port()
    args = ["--port", str(port)] + (["--demo"] if demo else [])
    return ServiceProcess("fake_twilio", python_module("devservices.fake_twilio", *args), port,
                          log_path=log_path).start()


def _call(base_url: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base_url.rstrip("/") + path, data=data, method=method,  # noqa: S310
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310
        return json.loads(resp.read() or b"null")


def create_account(base_url: str, sid: str, auth_token: str, *, parent_sid: str | None = None,
                   friendly_name: str | None = None, status: str = "active",
                   demo: bool = False, currency: str = "usd") -> dict[str, Any]:
    body: dict[str, Any] = {"sid": sid, "auth_token": auth_token, "parent_sid": parent_sid,
                            "status": status, "demo": demo, "currency": currency}
    if friendly_name is not None:
        body["friendly_name"] = friendly_name
    return _call(base_url, "POST", "/_fake/accounts", body)


def set_usage(base_url: str, sid: str, records: Iterable[dict[str, Any]], *,
              replace_all: bool = False) -> None:
    """Set leaf records ``{category, date, count, usage, price}``; each replaces its (category, date).

    A record with ``"unlisted": True`` counts in its parents and ``totalprice`` but is never served itself
    (usage Twilio bills without listing it: the day's leaves then fall short of ``totalprice``)."""
    recs = [{**r, "date": str(r["date"])} for r in records]  # str(date) is ISO
    _call(base_url, "POST", f"/_fake/accounts/{sid}/usage", {"records": recs, "replace_all": replace_all})


def inject_fault(base_url: str, sid: str, kind: str, *, count: int = 1, status: int = 500,
                 retry_after: float | str | None = None, seconds: float = 0.0, field: str = "price") -> None:
    """kind: ``status`` (next ``count`` requests answer ``status``), ``sleep`` (next requests wait
    ``seconds`` first), ``malformed`` (next ``count`` usage pages carry one extra broken record,
    broken in ``field``: price, usage, count, category or date) or ``overlap`` (next ``count`` usage
    pages after the first start with the previous page's last record again)."""
    _call(base_url, "POST", f"/_fake/accounts/{sid}/faults",
          {"kind": kind, "count": count, "status": status, "retry_after": retry_after,
           "seconds": seconds, "field": field})


def clear_faults(base_url: str, sid: str) -> None:
    _call(base_url, "DELETE", f"/_fake/accounts/{sid}/faults")


def bulk_generate(base_url: str, *, accounts: int, start_date: date, days: int, seed: int = 0,
                  auth_token: str = "bulk-token",  # noqa: S107
                  parent_sid: str | None = None) -> dict[str, Any]:
    return _call(base_url, "POST", "/_fake/bulk",
                 {"accounts": accounts, "start_date": start_date.isoformat(), "days": days, "seed": seed,
                  "auth_token": auth_token, "parent_sid": parent_sid})


def request_log(base_url: str, account: str | None = None) -> list[dict[str, Any]]:
    path = "/_fake/requests" + (f"?{urlencode({'account': account})}" if account else "")
    return _call(base_url, "GET", path)["requests"]


def clear_request_log(base_url: str) -> None:
    _call(base_url, "DELETE", "/_fake/requests")


def account_status(base_url: str, sid: str) -> str:
    return _call(base_url, "GET", f"/_fake/accounts/{sid}")["status"]


def reset(base_url: str) -> None:
    _call(base_url, "POST", "/_fake/reset")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--demo", action="store_true")
    args = parser.parse_args(argv)
    web.run_app(make_app(demo=args.demo), host="127.0.0.1", port=args.port, access_log=None,
                print=lambda msg: print(msg, flush=True))


if __name__ == "__main__":
    main()
