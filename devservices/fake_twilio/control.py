"""The unauthenticated control API under /_fake/ (tests, demo, benchmark), and the aiohttp app."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from aiohttp import web

from devservices.fake_twilio.api import FakeTwilio
from devservices.fake_twilio.categories import API, LEAVES, PARENTS
from devservices.fake_twilio.state import Account, Fault, Leaf, State

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

