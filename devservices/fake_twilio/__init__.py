"""A local, stateful fake of the parts of Twilio's REST API that Rebill uses (dev/test only).

Speaks Twilio's real JSON shapes (2010-04-01 API):

* ``GET  /2010-04-01/Accounts/{Sid}/Usage/Records/Daily.json`` (paged; parents roll up leaves;
  ``IncludeSubaccounts`` — true by default, as at Twilio — adds a main account's subaccounts' usage)
* ``GET  /2010-04-01/Accounts/{Sid}.json`` / ``POST`` with ``Status=`` (suspend / resume / close)
* ``GET  /2010-04-01/Accounts/{Sid}/Balance.json`` (the account's currency)
* ``POST /2010-04-01/Accounts.json`` with ``FriendlyName=`` (create a subaccount under the caller)

plus an unauthenticated control API under ``/_fake/`` for tests, the demo and the benchmark
(accounts, usage, bulk generation, fault injection, request log, reset).

Modules: ``categories`` (the category tree), ``state`` (accounts, usage, faults, roll-ups),
``records`` (JSON shapes), ``api`` (Twilio endpoints), ``control`` (``/_fake/`` and the app),
``client`` (start the process, call the control API).

Run: ``python -m devservices.fake_twilio --port 8765 [--demo]`` (binds 127.0.0.1 only).
"""

from devservices.fake_twilio.categories import FINER, LEAVES, PARENTS, Category
from devservices.fake_twilio.client import (
    account_status,
    bulk_generate,
    clear_faults,
    clear_request_log,
    create_account,
    inject_fault,
    request_log,
    reset,
    set_usage,
    start_fake_twilio,
)
from devservices.fake_twilio.control import make_app

__all__ = [
    "FINER",
    "LEAVES",
    "PARENTS",
    "Category",
    "account_status",
    "bulk_generate",
    "clear_faults",
    "clear_request_log",
    "create_account",
    "inject_fault",
    "make_app",
    "request_log",
    "reset",
    "set_usage",
    "start_fake_twilio",
]
