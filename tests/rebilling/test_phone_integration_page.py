"""Settings → Phone Integration: counts per state, filter, search, sort and pages; agency B's never show."""

from __future__ import annotations

import re

from django_tenants.utils import tenant_context

from rebilling.services import rebilling_switch_on
from tests.conftest import client_for
from tests.rebilling.conftest import Shape, make_subaccount

READY = Shape("lc_phone", "active", True, True)
NO_CARD = Shape("lc_phone", "active", True, False)
TWILIO = Shape("twilio", "active", True, True)


def _rows(page: str) -> list[tuple[str, str]]:
    """(name, state) of every row, in order."""
    return re.findall(r'<tr data-subaccount="\d+">\s*<td>(.*?)</td>.*?data-state="(\w+)"', page, re.S)


def _count(page: str, state: str) -> int:
    return int(re.search(rf'data-count="{state}">(\d+)<', page).group(1))


def test_counts_filter_search_sort_and_pages(world, ready):
    # given agency A with 3 ready (one switched on), 2 without a card, 1 on Twilio (Pro: rebillable)
    with tenant_context(world.a.agency):
        made = [make_subaccount(READY, name=f"PI ready {i}") for i in range(2)]
        made += [make_subaccount(NO_CARD, name=f"PI no card {i}") for i in range(2)]
        made.append(make_subaccount(TWILIO, name="PI twilio"))
        rebilling_switch_on(subaccount=made[0], by=world.a.admin)
    with tenant_context(world.b.agency):
        make_subaccount(READY, name="PI bravo secret")
    client = client_for(world.a, world.a.admin)

    page = client.get("/agency/settings/phone-integration/", {"q": "PI "}).content.decode()
    assert (_count(page, "all"), _count(page, "enabled"), _count(page, "can_be_enabled"),
            _count(page, "disabled")) == (5, 1, 2, 2)
    assert "PI bravo secret" not in page

    # filter by state
    enabled = client.get("/agency/settings/phone-integration/", {"q": "PI ", "state": "enabled"}).content.decode()
    assert _rows(enabled) == [("PI ready 0", "enabled")]
    disabled = client.get("/agency/settings/phone-integration/", {"q": "PI ", "state": "disabled"}).content.decode()
    assert [name for name, _ in _rows(disabled)] == ["PI no card 0", "PI no card 1"]
    assert "Ask the client for a card" in disabled

    # sort by state, then by name descending
    by_state = client.get("/agency/settings/phone-integration/", {"q": "PI ", "sort": "state"}).content.decode()
    assert [state for _, state in _rows(by_state)] == [
        "enabled", "can_be_enabled", "can_be_enabled", "disabled", "disabled"]
    by_name = client.get("/agency/settings/phone-integration/", {"q": "PI ", "sort": "-name"}).content.decode()
    assert [name for name, _ in _rows(by_name)][0] == "PI twilio"

    # the whole agency (world's clients included), and nonsense parameters fall back to the defaults
    everything = client.get("/agency/settings/phone-integration/",
                            {"state": "bogus", "sort": "drop table", "page": "x"}).content.decode()
    assert _count(everything, "all") == 8
    assert "bravo" not in everything.lower().replace("bravo agency", "")


def test_pages_of_fifty(world, ready):
    with tenant_context(world.a.agency):
        for i in range(60):
            make_subaccount(NO_CARD, name=f"Paged {i:03d}")
    client = client_for(world.a, world.a.admin)
    first = client.get("/agency/settings/phone-integration/", {"q": "Paged"}).content.decode()
    assert len(_rows(first)) == 50
    assert "Page 1 of 2 (60 sub-accounts)" in first
    second = client.get("/agency/settings/phone-integration/", {"q": "Paged", "page": "2"}).content.decode()
    assert [name for name, _ in _rows(second)] == [f"Paged {i:03d}" for i in range(50, 60)]
    beyond = client.get("/agency/settings/phone-integration/", {"q": "Paged", "page": "99"}).content.decode()
    assert "Page 2 of 2" in beyond
