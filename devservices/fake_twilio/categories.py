"""Twilio's usage category tree as the fake serves it: leaves, finer children, roll-up parents."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

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

