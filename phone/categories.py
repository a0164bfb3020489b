"""Twilio usage categories Rebill bills, and the products they map to.

Twilio's Usage Records API returns parent categories (``sms``, ``calls``, ``totalprice``, ...) next
to their children, and a parent's values are the sum of its children's. The leaves listed in
``BILLABLE`` map to their product; parents and the finer children of a category we bill as a leaf
are never billed; any other category (one Twilio added, one we have no product for) is billed as
*Other*, so no usage is dropped. If such a category turns out to be a parent, the daily check of each
day's leaves against ``totalprice`` shows the double count to platform staff.
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


# Finer children of categories billed as leaves above: they roll up into them, so billing them too
# would double count.
FINER: frozenset[str] = frozenset({
    "mms-inbound-longcode", "mms-inbound-tollfree", "mms-inbound-shortcode",
    "mms-outbound-longcode", "mms-outbound-tollfree", "mms-outbound-shortcode",
})

TOTAL = "totalprice"


def category_product(category: str) -> Product | None:
    """The product a category is billed as: its own, Other for any unmapped leaf, None for roll-ups."""
    if category in PARENTS or category in FINER:
        return None
    meta = BILLABLE.get(category)
    return meta.product if meta is not None else Product.OTHER


def is_billable(category: str) -> bool:
    """True only for the leaf categories we bill (parents and unknown categories are False)."""
    return category in BILLABLE and category not in PARENTS


def is_parent(category: str) -> bool:
    return category in PARENTS


def billable_category(category: str) -> BillableCategory | None:
    return BILLABLE.get(category) if is_billable(category) else None


assert not (BILLABLE.keys() & (PARENTS | FINER)), "a category cannot be both a billed leaf and a roll-up"
