"""The batched usage store: reads of many sub-accounts stored in one transaction and one statement, each read
kept to the rules a single pull keeps (provider moved → dropped, an older read never overwrites a newer one,
exact deltas), and batches that share a sub-account taking turns on real connections."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone
from django_tenants.utils import tenant_context

from creditusage.models import (
    AgencyCostDayRollup,
    SubAccountCostSpanTotal,
    SubAccountProductCostSpanTotal,
    UsageCostMonthRollup,
    UsageCostRollup,
)
from devservices.fake_twilio import inject_fault, request_log
from phone.models import SubAccountProvider, UsageDelta, UsageLine
from phone.services import (
    PullOutcome,
    UsageRead,
    provider_set_twilio,
    usage_lines_store,
    usage_pulls,
    usage_reads_store,
)
from phone.usage_client import UsageRecord
from subaccounts.models import AuditEntry, SubAccount
from tests.phone.helpers import D, agency_twilio_account, put_usage, today, usage, use_lc_phone

CATEGORY = "calls-outbound"


def record(account_sid: str, units: int, *, category: str = CATEGORY, day: date | None = None) -> UsageRecord:
    return UsageRecord(account_sid=account_sid, category=category, product="calls", day=day or today(), count=D(units),
                       usage=D(units), usage_unit="minutes", price=D(units) / 100, price_unit="usd")


def read_of(provider: SubAccountProvider, units: int, fetched_at: datetime, *, account_sid: str | None = None,
            kind: str | None = None) -> UsageRead:
    sid = account_sid or provider.account_sid
    return UsageRead(subaccount_id=provider.subaccount_id, provider=kind or provider.provider, account_sid=sid,
                     fetched_at=fetched_at, records=[record(sid, units)], provider_id=provider.pk)


def line_and_deltas(provider: SubAccountProvider) -> tuple[UsageLine, list[UsageDelta]]:
    line = UsageLine.objects.get(subaccount_id=provider.subaccount_id, account_sid=provider.account_sid, day=today())
    return line, list(UsageDelta.objects.filter(line=line).order_by("revision"))


def assert_exact(provider: SubAccountProvider) -> UsageLine:
    line, deltas = line_and_deltas(provider)
    assert line.cost == sum(delta.cost_delta for delta in deltas)
    assert line.units == sum(delta.units_delta for delta in deltas)
    assert [delta.revision for delta in deltas] == list(range(1, line.revision + 1))
    return line


def lc_providers(world, count: int) -> list[SubAccountProvider]:
    subaccounts = list(world.a.subaccounts)
    subaccounts += [SubAccount.objects.create(name=f"Batch client {n}") for n in range(count - len(subaccounts))]
    return [use_lc_phone(subaccount=subaccount, admin=world.a.admin) for subaccount in subaccounts[:count]]


@pytest.mark.django_db
def test_one_batch_keeps_each_reads_rules(world, twilio):
    with tenant_context(world.a.agency):
        # given four LC Phone sub-accounts (Twilio's price: the price book has none for the category)
        corrected, outdated, moved, fresh = lc_providers(world, 4)
        earlier = timezone.now()
        batch_read, newer = earlier + timedelta(seconds=10), earlier + timedelta(seconds=20)
        # one stored 100 minutes before; one already stored by a newer read than the batch's
        usage_lines_store(provider=corrected, account_sid=corrected.account_sid,
                          records=[record(corrected.account_sid, 100)], fetched_at=earlier)
        first_cost = line_and_deltas(corrected)[0].cost
        assert first_cost > 0
        usage_lines_store(provider=outdated, account_sid=outdated.account_sid,
                          records=[record(outdated.account_sid, 50)], fetched_at=newer)
        # and one moved to its own Twilio account while the batch was reading its LC Phone account
        old_sid = moved.account_sid
        sid, token = agency_twilio_account(twilio.url, "moved during the pull")
        provider_set_twilio(subaccount=moved.subaccount, account_sid=sid, auth_token=token, by=world.a.admin)

        # when one batch stores a downward correction, an outdated read, the moved one's read and a new one
        results = usage_reads_store([
            read_of(corrected, 80, batch_read), read_of(outdated, 70, batch_read),
            read_of(moved, 30, batch_read, account_sid=old_sid, kind="lc_phone"), read_of(fresh, 5, batch_read),
        ])

        # then each read got its own outcome
        assert [(result.outcome, result.changed) for result in results] == [
            (PullOutcome.STORED, 1), (PullOutcome.STORED, 0), (PullOutcome.PROVIDER_CHANGED, 0),
            (PullOutcome.STORED, 1)]
        # the correction is a negative delta and the line is still the sum of its deltas
        line = assert_exact(corrected)
        assert (line.units, line.cost, line.revision) == (80, first_cost * 80 / 100, 2)
        assert [(d.units_delta, d.cost_delta) for d in line_and_deltas(corrected)[1]] == [
            (100, first_cost), (-20, -first_cost * 20 / 100)]
        # the newer read stands
        line = assert_exact(outdated)
        assert (line.units, line.revision) == (50, 1)
        # nothing of the moved one's old account was stored, and its read marks are not moved on
        assert not UsageLine.objects.filter(subaccount_id=moved.subaccount_id).exists()
        assert SubAccountProvider.objects.get(pk=moved.pk).read_marks == {}
        # and the new one was stored with its first delta
        line = assert_exact(fresh)
        assert (line.units, line.revision) == (5, 1)
        marks = SubAccountProvider.objects.get(pk=fresh.pk).read_marks
        assert {day: datetime.fromisoformat(at) for day, at in marks.items()} == {today().isoformat(): batch_read}


@pytest.mark.django_db
def test_two_reads_of_one_sub_account_in_one_call_are_stored_in_turn(world, twilio):
    with tenant_context(world.a.agency):
        [provider] = lc_providers(world, 1)
        first = timezone.now()
        results = usage_reads_store([read_of(provider, 10, first), read_of(provider, 4, first + timedelta(1))])
        assert [result.changed for result in results] == [1, 1]
        line = assert_exact(provider)
        assert (line.units, line.revision) == (4, 2)


@pytest.mark.django_db
def test_a_batch_pull_reads_each_sub_account_and_stores_them_together(world, twilio):
    with tenant_context(world.a.agency):
        first, second = lc_providers(world, 2)
        put_usage(twilio.url, first.account_sid, [usage(CATEGORY, today(), 7, "0.07")])
        put_usage(twilio.url, second.account_sid, [usage(CATEGORY, today(), 9, "0.09"),
                                                   usage("sms-outbound-longcode", today(), 2, "0.02")])
        results = usage_pulls(provider_ids=[first.pk, second.pk, 0])
        assert {pk: (result.outcome, result.changed) for pk, result in results.items()} == {
            first.pk: (PullOutcome.STORED, 1), second.pk: (PullOutcome.STORED, 2), 0: (PullOutcome.PROVIDER_GONE, 0)}
        assert assert_exact(first).units == 7
        for provider in (first, second):
            assert SubAccountProvider.objects.get(pk=provider.pk).last_pulled_at is not None


@pytest.mark.django_db
def test_a_batch_that_runs_out_of_time_stores_what_it_read_and_leaves_the_rest_to_the_next_pull(world, twilio):
    with tenant_context(world.a.agency):
        slow, second, third = lc_providers(world, 3)
        for provider in (slow, second, third):
            put_usage(twilio.url, provider.account_sid, [usage(CATEGORY, today(), 7, "0.07")])
        # given Twilio takes longer to answer the first read than the batch has left
        inject_fault(twilio.url, slow.account_sid, "sleep", seconds=1.0)

        results = usage_pulls(provider_ids=[slow.pk, second.pk, third.pk], read_until=time.monotonic() + 0.5)

        # then the read that was started is stored, and the others were not even asked for
        assert {pk: result.outcome for pk, result in results.items()} == {
            slow.pk: PullOutcome.STORED, second.pk: PullOutcome.DEFERRED, third.pk: PullOutcome.DEFERRED}
        assert assert_exact(slow).units == 7
        for provider in (second, third):
            assert request_log(twilio.url, provider.account_sid) == []
            assert SubAccountProvider.objects.get(pk=provider.pk).last_pulled_at is None  # so it is due again
            assert not UsageLine.objects.filter(subaccount_id=provider.subaccount_id).exists()
        # and the next pull stores them
        results = usage_pulls(provider_ids=[second.pk, third.pk])
        assert {result.outcome for result in results.values()} == {PullOutcome.STORED}


@pytest.mark.django_db
def test_a_category_with_tabs_or_backslashes_is_stored_as_read(world, twilio):
    with tenant_context(world.a.agency):
        [provider] = lc_providers(world, 1)
        odd = "odd\\category\twith\ttabs\nand a newline"
        results = usage_reads_store([UsageRead(
            subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=provider.account_sid,
            fetched_at=timezone.now(), provider_id=provider.pk,
            records=[record(provider.account_sid, 3), record(provider.account_sid, 4, category=odd)])])
        assert results[0].changed == 2
        assert set(UsageLine.objects.filter(subaccount_id=provider.subaccount_id).values_list("category", "units")) == {
            (CATEGORY, 3), (odd, 4)}


@pytest.mark.django_db
def test_days_a_read_repeats_exactly_are_not_sent_again_and_any_change_is(world, twilio):
    with tenant_context(world.a.agency):
        [provider] = lc_providers(world, 1)
        sid = provider.account_sid
        yesterday = today() - timedelta(days=1)

        def read(at: datetime, units_today: int, units_yesterday: int = 9) -> UsageRead:
            return UsageRead(subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=sid,
                             fetched_at=at, provider_id=provider.pk,
                             records=[record(sid, units_today), record(sid, units_yesterday, day=yesterday)])

        upserts: list[str] = []

        def count_upserts(execute, sql, params, many, context):
            if sql.lstrip().startswith("WITH prices"):
                upserts.append(sql)
            return execute(sql, params, many, context)

        def incoming_days() -> list:
            with connection.cursor() as cursor:
                cursor.execute("SELECT DISTINCT day FROM pg_temp.rebill_usage_incoming ORDER BY day")
                return [row[0] for row in cursor.fetchall()]

        start = timezone.now()
        with connection.execute_wrapper(count_upserts):
            usage_reads_store([read(start, 5)])
            assert len(upserts) == 1
            # when the same records are read again: nothing is sent, the marks move on
            [again] = usage_reads_store([read(start + timedelta(seconds=1), 5)])
            assert (again.outcome, again.changed, len(upserts)) == (PullOutcome.STORED, 0, 1)
            marks = SubAccountProvider.objects.get(pk=provider.pk).read_marks
            assert {datetime.fromisoformat(at) for at in marks.values()} == {start + timedelta(seconds=1)}
            # when today changes: only today is sent
            [changed] = usage_reads_store([read(start + timedelta(seconds=2), 6)])
            assert (changed.changed, len(upserts), incoming_days()) == (1, 2, [today()])
            # when today goes back to what it was two reads ago: sent again, and stored
            [back] = usage_reads_store([read(start + timedelta(seconds=3), 5)])
            assert (back.changed, len(upserts)) == (1, 3)
            assert assert_exact(provider).units == 5
            # and once the lines are gone and the marks forgotten, the same records are stored again
            UsageDelta.objects.filter(line__subaccount_id=provider.subaccount_id).delete()
            UsageLine.objects.filter(subaccount_id=provider.subaccount_id).delete()
            SubAccountProvider.objects.filter(pk=provider.pk).update(read_marks={})
            [anew] = usage_reads_store([read(start + timedelta(seconds=4), 5)])
            assert anew.changed == 2


@pytest.mark.django_db
def test_a_tick_queues_its_due_sub_accounts_in_batches(world, twilio, monkeypatch, django_capture_on_commit_callbacks):
    from phone import tasks

    with tenant_context(world.a.agency):
        providers = lc_providers(world, 3)
        monkeypatch.setattr(tasks, "USAGE_PULL_BATCH", 2)
        with django_capture_on_commit_callbacks() as queued:
            assert tasks.usage_pull_agency() == 3
    assert [callback.args[0] for callback in queued] == [([providers[0].pk, providers[1].pk],), ([providers[2].pk],)]


# --- Two batches sharing sub-accounts, at once, on real connections (committed data, deleted after) -----------

@pytest.fixture
def committed(world, django_db_blocker) -> Iterator[None]:
    with django_db_blocker.unblock():
        try:
            yield
        finally:
            with tenant_context(world.a.agency):
                UsageDelta.objects.all().delete()
                UsageLine.objects.all().delete()
                AuditEntry.objects.all().delete()
                SubAccountProvider.objects.all().delete()
                # the deltas' cost rollups keep their sub-accounts (PROTECT): they go first
                UsageCostRollup.objects.all().delete()
                UsageCostMonthRollup.objects.all().delete()
                SubAccountCostSpanTotal.objects.all().delete()
                SubAccountProductCostSpanTotal.objects.all().delete()
                AgencyCostDayRollup.objects.all().delete()
                SubAccount.objects.filter(name__startswith="Batch client").delete()
            connection.set_schema_to_public()
            from phoneregistry.models import TwilioAccountClaim

            TwilioAccountClaim.objects.all().delete()


def _waiting_on_locks(count: int, errors: list[BaseException]) -> None:
    """Wait until `count` other connections are blocked on a lock."""
    with connections["default"].cursor() as cursor:
        for _ in range(200):
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                           "AND datname = current_database()")
            if cursor.fetchone()[0] >= count:
                return
            time.sleep(0.05)
    raise AssertionError(f"the batches never waited for each other: {errors}")


def test_two_batches_sharing_sub_accounts_take_turns_without_deadlock(world, twilio, committed):
    with tenant_context(world.a.agency):
        providers = lc_providers(world, 3)
    low, middle, high = sorted(providers, key=lambda provider: provider.pk)
    base = timezone.now()
    for round_ in range(4):
        # given a third connection holding the lowest provider's row lock (a pull of it still storing)
        holder = connections.create_connection("default")
        holder.set_autocommit(False)
        with holder.cursor() as cursor:
            cursor.execute(f"SET search_path TO {world.a.agency.schema_name}, public")
            cursor.execute("SELECT id FROM phone_subaccountprovider WHERE id = %s FOR UPDATE", [low.pk])
        errors: list[BaseException] = []
        # two batches over the same sub-accounts, given in opposite orders: locked one by one in the order given,
        # the second would hold `high` while waiting for `low`, and the first hold `low` while waiting for `high`
        batches = [
            [read_of(provider, 10 * round_ + units, base + timedelta(seconds=10 * round_ + 1))
             for provider, units in ((low, 1), (middle, 2), (high, 3))],
            [read_of(provider, 10 * round_ + units, base + timedelta(seconds=10 * round_ + 2))
             for provider, units in ((high, 4), (middle, 5), (low, 6))],
        ]

        def store(reads: list[UsageRead], errors: list[BaseException] = errors) -> None:
            try:
                with tenant_context(world.a.agency):
                    results = usage_reads_store(reads)
                assert {result.outcome for result in results} == {PullOutcome.STORED}
            except BaseException as error:  # noqa: BLE001 — reported by the main thread
                errors.append(error)
            finally:
                connection.close()

        threads = [threading.Thread(target=store, args=(reads,)) for reads in batches]
        for thread in threads:
            thread.start()
        # when both are waiting, and the holder lets go
        _waiting_on_locks(2, errors)
        holder.rollback()
        holder.close()
        for thread in threads:
            thread.join(timeout=60)

        # then both stored without a deadlock, and every line holds the newer batch's read, exactly
        assert errors == []
        with tenant_context(world.a.agency):
            for provider, units in ((low, 6), (middle, 5), (high, 4)):
                line = assert_exact(provider)
                assert line.units == 10 * round_ + units
