"""phone/services/pull_schedule.py's pending-pull claim where the rest of the suite does not look: a claim expires one
pull interval plus the pull's hard time limit after it was taken, so a pull whose worker died is queued again."""

import pytest
from django.core.cache import cache
from django_tenants.utils import tenant_context

from phone.services.pull_schedule import (
    PULL_TIME_LIMIT_SECONDS,
    pull_intervals,
    usage_pull_pending_claim,
    usage_pull_pending_release,
)

pytestmark = pytest.mark.django_db


def test_a_claim_lasts_one_interval_plus_the_pulls_time_limit(world):
    active, _ = pull_intervals()
    expected = int(active.total_seconds()) + PULL_TIME_LIMIT_SECONDS
    with tenant_context(world.a.agency):
        # when a pull of provider 7 is claimed: a second claim is refused while the first holds
        assert usage_pull_pending_claim(provider_id=7) is True
        assert usage_pull_pending_claim(provider_id=7) is False
        # then the claim expires on its own after one interval and the pull's hard time limit
        redis = cache._cache.get_client(write=True)  # type: ignore[attr-defined]  # Django's Redis client
        ttl = redis.ttl(cache.make_key("usage-pull-pending:7"))
        assert expected - 5 <= ttl <= expected
        usage_pull_pending_release(provider_id=7)
        assert usage_pull_pending_claim(provider_id=7) is True
    with tenant_context(world.b.agency):  # another agency's provider 7 is another provider
        assert usage_pull_pending_claim(provider_id=7) is True
