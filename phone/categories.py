"""Twilio usage categories Rebill bills, and the products they map to.

Twilio's Usage Records API returns parent categories (``sms``, ``calls``, ``totalprice``, ...) next
to their children, and a parent's values are the sum of its children's. Only the leaves listed in
``BILLABLE`` are billed; every other category — parents and anything unknown — is not, so a new
category Twilio adds is ignored (and logged by the caller) rather than double counted.
"""

from __future__ import annotations

from dataclasses import dataclass

from agencies.plans import Product


@dataclass(frozen=True)
class BillableCategory:
    name: str
    product: Product
    unit: str  # what Twilio's ``usage`` field counts for this category


def _leaves(product: Product, unit: str, *names: str) -> dict[str, BillableCategory]:
    return {name: BillableCategory(name, product, unit) for name in names}


BILLABLE: dict[str, BillableCategory] = {
    **_leaves(Product.SMS, "messages",
              "sms-inbound-longcode", "sms-outbound-longcode",
              "sms-inbound-tollfree", "sms-outbound-tollfree",
              "sms-inbound-shortcode", "sms-outbound-shortcode"),
    # Twilio splits MMS further (mms-inbound-longcode, ...) but we bill at this level, so those
    # finer categories are deliberately absent: billing both levels would double count.
    **_leaves(Product.MMS, "messages", "mms-inbound", "mms-outbound"),
    # ``usage`` is billed minutes (rounded up per call); ``count`` is the number of calls.
    **_leaves(Product.CALLS, "minutes",
              "calls-inbound-local", "calls-inbound-tollfree", "calls-inbound-mobile", "calls-outbound"),
    **_leaves(Product.PHONE_NUMBERS, "phone-numbers",
              "phonenumbers-local", "phonenumbers-tollfree", "phonenumbers-mobile"),
    **_leaves(Product.OTHER, "messages", "sms-messages-carrierfees", "mms-messages-carrierfees"),
}

# Roll-up categories: never billed, whatever they contain.
PARENTS: frozenset[str] = frozenset({
    "totalprice",
    "sms", "sms-inbound", "sms-outbound",
    "mms",
    "calls", "calls-inbound",
    "phonenumbers",
})


def is_billable(category: str) -> bool:
    """True only for the leaf categories we bill (parents and unknown categories are False)."""
    return category in BILLABLE and category not in PARENTS


def is_parent(category: str) -> bool:
    return category in PARENTS


def billable_category(category: str) -> BillableCategory | None:
    return BILLABLE.get(category) if is_billable(category) else None


assert not (BILLABLE.keys() & PARENTS), "a category cannot be both a billed leaf and a parent"
