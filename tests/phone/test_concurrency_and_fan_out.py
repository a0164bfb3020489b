"""Committed data, real connections: two pulls of one sub-account at once, two admins setting a sub-account's first
provider at once, and the beat fan-out on a real Celery worker (each agency's pull writes only its own schema). What
these tests commit they delete."""

import threading
import time
from collections.abc import Iterator
from datetime import datetime

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django_tenants.utils import tenant_context

from agencies.tasks import fan_out_to_agencies
from devservices.fake_twilio import inject_fault, request_log
from phone.models import RetiredAccount, SubAccountProvider, UsageDelta, UsageLine
from phone.services import provider_set_lc_phone, provider_set_twilio, usage_pull
from phoneregistry.models import TwilioAccountClaim, UsageAlert
from subaccounts.models import AuditEntry
from tests.concurrency import run_at_once
from tests.phone.helpers import (
    agency_twilio_account,
    put_usage,
    snapshot,
    usage,
    use_lc_phone,
    use_twilio,
    window_days,
)

LEAVES = ["sms-outbound-longcode", "sms-inbound-longcode", "calls-outbound", "calls-inbound-local", "mms-outbound"]


@pytest.fixture
def committed(world, django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            for agency in (world.a.agency, world.b.agency):
                with tenant_context(agency):
                    UsageDelta.objects.all().delete()
                    UsageLine.objects.all().delete()
                    RetiredAccount.objects.all().delete()
                    AuditEntry.objects.all().delete()
                    SubAccountProvider.objects.all().delete()
            connection.set_schema_to_public()
            TwilioAccountClaim.objects.all().delete()
            UsageAlert.objects.all().delete()


def records(scale: int) -> list[dict]:
    return [usage(cat, day, scale * (i + 1) + d, "0.01") for d, day in enumerate(window_days())
            for i, cat in enumerate(LEAVES)]


def test_two_pulls_of_one_sub_account_at_once_give_the_same_lines_as_one(world, twilio, committed):
    # given two LC Phone sub-accounts with the same usage
    with tenant_context(world.a.agency):
        racing = use_lc_phone(subaccount=world.a.subaccounts[0], admin=world.a.admin)
        alone = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
    for provider in (racing, alone):
        put_usage(twilio.url, provider.lc_phone_account_sid, records(scale=7))
    # and Twilio slow enough that both pulls are reading it at the same time
    inject_fault(twilio.url, racing.lc_phone_account_sid, "sleep", count=2, seconds=0.5)

    # when one sub-account is pulled twice at once (two threads, two database connections)
    def pull() -> None:
        with tenant_context(world.a.agency):
            usage_pull(provider_id=racing.pk)

    run_at_once(pull, threads=2)
    # and the other once
    with tenant_context(world.a.agency):
        usage_pull(provider_id=alone.pk)

        # then both hold the same lines: each once, at revision 1, priced once
        raced = UsageLine.objects.filter(subaccount_id=racing.subaccount_id)
        single = UsageLine.objects.filter(subaccount_id=alone.subaccount_id)
        assert raced.count() == single.count() == len(LEAVES) * 3

        def comparable(lines):
            return {row[1:] for row in snapshot(lines)}  # without the account SID

        assert comparable(raced) == comparable(single)
        # and one delta per line: the losing pull appended nothing
        assert UsageDelta.objects.filter(line__subaccount_id=racing.subaccount_id).count() == raced.count()

    # and the two reads really overlapped: both reached Twilio before the first one's 0.5 s reply
    first, second = [datetime.fromisoformat(r["time"]) for r in request_log(twilio.url, racing.lc_phone_account_sid)
                     if r["path"].endswith("/Usage/Records/Daily.json")][:2]
    assert abs((second - first).total_seconds()) < 0.5


def test_beat_fan_out_pulls_every_agency_into_its_own_schema(world, twilio, committed, celery_worker):
    # given one provider in each agency, with different usage, committed for the worker to see
    with tenant_context(world.a.agency):
        alpha, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[0], admin=world.a.admin, name="alpha")
        alpha_lc = use_lc_phone(subaccount=world.a.subaccounts[1], admin=world.a.admin)
    with tenant_context(world.b.agency):
        bravo = use_lc_phone(subaccount=world.b.subaccounts[0], admin=world.b.admin)
    put_usage(twilio.url, alpha.twilio_account_sid, records(scale=3))
    put_usage(twilio.url, alpha_lc.lc_phone_account_sid, records(scale=4)[:5])
    put_usage(twilio.url, bravo.lc_phone_account_sid, records(scale=5)[:4])
    connection.set_schema_to_public()

    # when beat's dispatcher runs in public on a real worker
    sent = fan_out_to_agencies.delay("phone.tasks.usage_pull_agency").get(timeout=30)

    # then each agency's lines land in its own schema, from its own accounts only
    assert sent >= 2

    def lines(agency) -> set[tuple]:
        with tenant_context(agency):
            return set(UsageLine.objects.values_list("subaccount_id", "account_sid"))

    celery_worker.wait_until(lambda: sum(1 for _ in _all_lines(world.a.agency)) == 15 + 5
                             and sum(1 for _ in _all_lines(world.b.agency)) == 4)
    assert lines(world.a.agency) == {(alpha.subaccount_id, alpha.twilio_account_sid),
                                     (alpha_lc.subaccount_id, alpha_lc.lc_phone_account_sid)}
    assert lines(world.b.agency) == {(bravo.subaccount_id, bravo.lc_phone_account_sid)}
    with tenant_context(world.a.agency):
        assert SubAccountProvider.objects.get(pk=alpha.pk).last_pulled_at is not None


def _all_lines(agency) -> list[int]:
    with tenant_context(agency):
        return list(UsageLine.objects.values_list("pk", flat=True))


@pytest.mark.parametrize("move", ["twilio", "lc_phone"])
def test_two_admins_setting_a_first_provider_at_once_the_second_is_told_to_reload(world, twilio, committed, move):
    client = world.a.subaccounts[0]
    account_sid, auth_token = agency_twilio_account(twilio.url, "own")
    other_admins_sid = "AC" + "e" * 32
    inserted, leave = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def other_admin_saves_lc_phone_and_commits_once_we_wait_for_it() -> None:
        try:
            with tenant_context(world.a.agency), transaction.atomic():
                SubAccountProvider.objects.create(subaccount=client, provider="lc_phone",
                                                  lc_phone_account_sid=other_admins_sid)
                inserted.set()
                leave.wait(timeout=30)
        except BaseException as error:  # noqa: BLE001 — reported below
            errors.append(error)
        finally:
            connection.close()

    def commit_once_our_insert_waits_for_theirs() -> None:
        deadline = time.monotonic() + 30
        try:
            with connection.cursor() as cursor:
                while time.monotonic() < deadline:
                    cursor.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                                   "WHERE NOT l.granted AND a.datname = current_database()")
                    if cursor.fetchone()[0]:
                        break
                    time.sleep(0.02)
        finally:
            leave.set()
            connection.close()

    other = threading.Thread(target=other_admin_saves_lc_phone_and_commits_once_we_wait_for_it)
    other.start()
    assert inserted.wait(timeout=30)
    watcher = threading.Thread(target=commit_once_our_insert_waits_for_theirs)
    watcher.start()
    # when this admin saves the sub-account's first provider while the other admin's is not yet committed
    with tenant_context(world.a.agency), pytest.raises(ValidationError) as refused:
        if move == "twilio":
            provider_set_twilio(subaccount=client, account_sid=account_sid, auth_token=auth_token, by=world.a.admin)
        else:
            provider_set_lc_phone(subaccount=client, by=world.a.admin)
    watcher.join(timeout=60)
    other.join(timeout=60)

    # then this admin is told to reload, and the other admin's provider stands
    assert errors == []
    assert refused.value.messages == [
        "Someone else changed this sub-account's phone provider just now; reload and try again."]
    with tenant_context(world.a.agency):
        stored = SubAccountProvider.objects.get(subaccount=client)
        assert (stored.provider, stored.lc_phone_account_sid) == ("lc_phone", other_admins_sid)
