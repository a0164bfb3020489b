"""The Twilio API endpoints the fake serves."""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from aiohttp import web

from devservices.fake_twilio.categories import API, DEFAULT_PAGE_SIZE, LEAVES, MAX_PAGE_SIZE
from devservices.fake_twilio.records import (
    _account_json,
    _basic_auth,
    _malformed,
    _parse_day,
    _record_json,
    _record_text,
    _rfc2822,
    twilio_error,
)
from devservices.fake_twilio.state import Account, Leaf, State, _leaves_for, _with_parents

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

