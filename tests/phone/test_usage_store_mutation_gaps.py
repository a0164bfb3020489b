"""phone/services/usage_store.py where the rest of the suite does not look: categories that each hold one character
COPY's text format would misread (a backslash, a newline, one or two tabs, a carriage return: each is escaped), a
Twilio read stored in one batch with an LC Phone read taken at the same moment (only the LC Phone one is priced by
the price book), a retired account's re-read, which no provider's read marks hold back (even in a batch with
current accounts' reads), reads dropped in a batch, and several sub-accounts' reads upserted in one statement."""

import logging
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tenants.utils import tenant_context

from phone.models import SubAccountProvider, UsageLine
from phone.services import PullOutcome, PullResult, UsageRead, provider_set_lc_phone, usage_reads_store
from subaccounts.models import SubAccount
from tests.phone.helpers import D, today, use_twilio
from tests.phone.test_usage_batches import CATEGORY, lc_providers, read_of, record
from tests.phone.test_usage_mutation_gaps import _retired_lc_accounts

pytestmark = pytest.mark.django_db


def test_a_category_with_any_one_character_copy_would_misread_is_stored_as_read(world, twilio):
    odd = ["back\\slash", "new\nline", "tab\tbed", "two\ttabs\there", "carriage\rreturn"]
    with tenant_context(world.a.agency):
        [provider] = lc_providers(world, 1)
        [result] = usage_reads_store([UsageRead(
            subaccount_id=provider.subaccount_id, provider=provider.provider, account_sid=provider.account_sid,
            fetched_at=timezone.now(), provider_id=provider.pk,
            records=[record(provider.account_sid, 3)] + [record(provider.account_sid, 4 + n, category=category)
                                                         for n, category in enumerate(odd)])])
        assert result.changed == 1 + len(odd)
        assert set(UsageLine.objects.filter(subaccount_id=provider.subaccount_id).values_list("category", "units")) == {
            (CATEGORY, 3), *((category, 4 + n) for n, category in enumerate(odd))}


def test_a_twilio_read_batched_with_an_lc_phone_read_of_the_same_moment_keeps_twilios_price(world, twilio):
    with tenant_context(world.a.agency):
        [lc_phone] = lc_providers(world, 1)
        own, _ = use_twilio(twilio.url, subaccount=world.a.subaccounts[1], admin=world.a.admin, name="own")
        # when one batch stores 100 minutes of each, read at the same moment
        at = timezone.now()
        usage_reads_store([read_of(own, 100, at), read_of(lc_phone, 100, at)])
        # then the agency's own account costs Twilio's $1.00, and LC Phone's the price book's 100 x $0.0166
        costs = {line.subaccount_id: (line.cost, line.unit_price) for line in UsageLine.objects.all()}
        assert costs == {own.subaccount_id: (D("1.00"), None), lc_phone.subaccount_id: (D("1.66"), D("0.0166"))}


def test_no_providers_read_marks_hold_back_a_reread_of_a_retired_account_in_the_same_batch(world, twilio):
    yesterday = today() - timedelta(days=1)
    with tenant_context(world.a.agency):
        [retired] = _retired_lc_accounts(world, twilio, 1)
        if not SubAccountProvider.objects.filter(pk=1).exists():  # the first provider row too, whoever's it is
            SubAccountProvider.objects.create(pk=1, subaccount=SubAccount.objects.create(name="First"),
                                              provider="lc_phone", lc_phone_account_sid="AC" + "f" * 32)
        # given every provider row has marked yesterday with a read newer than the batch's
        at = timezone.now()
        SubAccountProvider.objects.update(read_marks={yesterday.isoformat(): (at + timedelta(hours=1)).isoformat()})
        first = SubAccountProvider.objects.get(pk=1)
        # when one batch stores the retired account's correction of yesterday and the first provider's read of today
        reread = UsageRead(subaccount_id=retired.subaccount_id, provider=retired.provider,
                           account_sid=retired.account_sid, fetched_at=at, retired_id=retired.pk,
                           records=[record(retired.account_sid, 12, day=yesterday)])
        results = usage_reads_store([reread, read_of(first, 5, at)])
        # then both are stored: the read marks are the current accounts', never a retired account's
        assert [(result.outcome, result.changed) for result in results] == [(PullOutcome.STORED, 1)] * 2
        assert UsageLine.objects.get(account_sid=retired.account_sid, day=yesterday).units == 12


def test_a_reread_of_an_account_the_sub_account_returned_to_meanwhile_is_dropped(world, twilio):
    yesterday = today() - timedelta(days=1)
    with tenant_context(world.a.agency):
        # given a re-read of the LC Phone account a client left, taken before the client moved back to it
        [retired] = _retired_lc_accounts(world, twilio, 1)
        reread = UsageRead(subaccount_id=retired.subaccount_id, provider=retired.provider,
                           account_sid=retired.account_sid, fetched_at=timezone.now(), retired_id=retired.pk,
                           records=[record(retired.account_sid, 12, day=yesterday)])
        provider_set_lc_phone(subaccount=SubAccount.objects.get(pk=retired.subaccount_id), by=world.a.admin)
        # when it is stored: it is dropped (that account is the current one again; its own pulls store it)
        [result] = usage_reads_store([reread])
        assert (result.outcome, result.records) == (PullOutcome.PROVIDER_CHANGED, 1)
        assert not UsageLine.objects.filter(account_sid=retired.account_sid).exists()


def test_a_batch_drops_the_reads_of_providers_removed_or_changed_meanwhile_and_stores_the_rest(world, twilio, caplog):
    with tenant_context(world.a.agency):
        # given reads of three LC Phone sub-accounts: one removed since, one moved to its own Twilio account since
        removed, moved, kept = lc_providers(world, 3)
        at = timezone.now()
        reads = [read_of(removed, 3, at), read_of(moved, 4, at), read_of(kept, 5, at)]
        SubAccountProvider.objects.filter(pk=removed.pk).delete()
        use_twilio(twilio.url, subaccount=moved.subaccount, admin=world.a.admin, name="own")
        # when one batch stores them
        with caplog.at_level(logging.INFO, logger="phone.services.usage_store"):
            results = usage_reads_store(reads)
        # then each dropped read says why, the last is stored, and the log names the sub-account that moved
        assert results == [PullResult(PullOutcome.PROVIDER_GONE, records=1),
                           PullResult(PullOutcome.PROVIDER_CHANGED, records=1),
                           PullResult(PullOutcome.STORED, records=1, changed=1)]
        assert set(UsageLine.objects.values_list("subaccount_id", "units")) == {(kept.subaccount_id, 5)}
    assert [record.getMessage() for record in caplog.records if record.name == "phone.services.usage_store"] == [
        f"Sub-account {moved.subaccount_id} changed provider during a pull; its result is dropped"]


def _counting_upserts(upserts: list[str]):
    def count_upserts(execute, sql, params, many, context):
        if sql.lstrip().startswith("WITH prices"):
            upserts.append(sql)
        return execute(sql, params, many, context)
    return connection.execute_wrapper(count_upserts)


def test_reads_of_several_sub_accounts_are_upserted_in_one_statement(world, twilio):
    upserts: list[str] = []
    with tenant_context(world.a.agency):
        providers = lc_providers(world, 3)
        at = timezone.now()
        with _counting_upserts(upserts):
            results = usage_reads_store([read_of(provider, 2 + n, at) for n, provider in enumerate(providers)])
        assert [(result.outcome, result.changed) for result in results] == [(PullOutcome.STORED, 1)] * 3
    assert len(upserts) == 1


def test_two_reads_each_of_two_sub_accounts_are_two_statements_each_account_in_the_order_read(world, twilio):
    upserts: list[str] = []
    with tenant_context(world.a.agency):
        first, second = lc_providers(world, 2)
        older = timezone.now()
        newer = older + timedelta(seconds=1)
        reads = [read_of(first, 1, older), read_of(first, 2, newer),
                 read_of(second, 3, older), read_of(second, 4, newer)]
        with _counting_upserts(upserts):
            results = usage_reads_store(reads)
        # then every read changed its line, the older first: each line has both revisions
        assert [(result.outcome, result.changed) for result in results] == [(PullOutcome.STORED, 1)] * 4
        lines = {line.subaccount_id: (line.units, line.revision) for line in UsageLine.objects.all()}
        assert lines == {first.subaccount_id: (2, 2), second.subaccount_id: (4, 2)}
    assert len(upserts) == 2
