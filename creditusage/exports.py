"""CSV exports, streamed from `values_list` tuples read in chunks: exact decimal strings (6 places), ISO dates,
and no text cell that a spreadsheet would read as a formula."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.db.models import QuerySet
from django.http import StreamingHttpResponse

from agency_wallets.models import AgencyWalletEntry
from creditusage.agency_wallet import AGENCY_WALLET_KIND_LABELS, agency_wallet_reference
from creditusage.selectors import (
    ENTRY_KIND_LABELS,
    MICRO,
    PRODUCT_LABELS,
    charge_reference,
    client_unit_price,
    usage_description,
    usage_profit,
)
from wallets.models import WalletEntry

# A cell starting with one of these is a formula to Excel/LibreOffice/Sheets (OWASP "CSV injection").
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def text_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def money_cell(value: Decimal | None) -> str:
    return "" if value is None else f"{value.quantize(MICRO):f}"


def when_cell(value: datetime | date | None) -> str:
    return "" if value is None else value.isoformat()


ROWS_PER_CHUNK = 500


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(*, filename: str, header: list[str], rows: Iterable[list[str]]) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def stream() -> Iterator[str]:
        yield writer.writerow(header)  # the first byte goes out before the first query's rows are read
        batch: list[str] = []
        for row in rows:
            batch.append(writer.writerow(row))
            if len(batch) == ROWS_PER_CHUNK:
                yield "".join(batch)
                batch = []
        if batch:
            yield "".join(batch)

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


CLIENT_HEADER = ["date", "type", "product", "description", "units", "unit_price", "amount", "balance_after",
                 "reference"]
AGENCY_HEADER = [*CLIENT_HEADER, "agency_cost", "multiplier", "profit"]

# Rows are read as tuples straight from the database (values_list, in chunks): no model instance per line.
CHUNK_SIZE = 2000


def multiplier_cell(value: Decimal | None) -> str:
    return "" if value is None else f"{value:f}"


def line_rows(*, entries: QuerySet[WalletEntry], for_agency: bool) -> Iterator[list[str]]:
    """The CSV of See details (the client's columns; the agency's add cost, multiplier and profit)."""
    values = entries.values_list("created_at", "kind", "product", "category", "day", "note", "units_delta",
                                 "amount", "balance_after", "usage_delta_id", "charge_id",
                                 "charge__payment_intent_id", "seq", "cost_delta", "multiplier")
    for (created_at, kind, product, category, day, note, units, amount, balance_after, usage_delta_id, charge_id,
         payment_intent_id, seq, cost, multiplier) in values.iterator(chunk_size=CHUNK_SIZE):
        kind_label = ENTRY_KIND_LABELS.get(kind, kind)
        row = [when_cell(created_at), text_cell(kind_label), text_cell(PRODUCT_LABELS.get(product, product)),
               text_cell(usage_description(usage_delta_id=usage_delta_id, category=category, day=day, note=note,
                                           kind_label=kind_label)),
               money_cell(units),
               money_cell(client_unit_price(usage_delta_id=usage_delta_id, units=units, amount=amount)),
               money_cell(amount), money_cell(balance_after),
               text_cell(charge_reference(charge_id=charge_id, payment_intent_id=payment_intent_id,
                                          usage_delta_id=usage_delta_id, seq=seq))]
        if for_agency:
            row += [money_cell(cost), multiplier_cell(multiplier),
                    money_cell(usage_profit(usage_delta_id=usage_delta_id, cost=cost, amount=amount))]
        yield row


RECONCILIATION_HEADER = ["subaccount_id", "subaccount", "seq", "created_at", "type", "category", "product", "day",
                         "units", "agency_cost", "multiplier", "client_amount", "balance_after",
                         "provider_account", "charge_id", "payment_intent_id", "note"]


def reconciliation_rows(entries: QuerySet[WalletEntry]) -> Iterator[list[str]]:
    values = entries.values_list("wallet__subaccount_id", "wallet__subaccount__name", "seq", "created_at", "kind",
                                 "category", "product", "day", "units_delta", "cost_delta", "multiplier", "amount",
                                 "balance_after", "provider_account", "charge_id", "charge__payment_intent_id",
                                 "note")
    for (subaccount_id, name, seq, created_at, kind, category, product, day, units, cost, multiplier, amount,
         balance_after, provider_account, charge_id, payment_intent_id, note) in values.iterator(
            chunk_size=CHUNK_SIZE):
        yield [str(subaccount_id), text_cell(name), str(seq), when_cell(created_at), kind, text_cell(category),
               product, when_cell(day), money_cell(units), money_cell(cost), multiplier_cell(multiplier),
               money_cell(amount), money_cell(balance_after), text_cell(provider_account),
               "" if charge_id is None else str(charge_id),
               "" if charge_id is None else text_cell(payment_intent_id or ""), text_cell(note)]


AGENCY_WALLET_HEADER = ["seq", "date", "type", "description", "category", "usage_day", "units", "amount",
                        "balance_after", "reference", "note"]


def agency_wallet_rows(entries: QuerySet[AgencyWalletEntry]) -> Iterator[list[str]]:
    values = entries.values_list("seq", "created_at", "kind", "category", "day", "note", "units_delta", "amount",
                                 "balance_after", "usage_delta_id")
    for (seq, created_at, kind, category, day, note, units, amount, balance_after,
         usage_delta_id) in values.iterator(chunk_size=CHUNK_SIZE):
        kind_label = AGENCY_WALLET_KIND_LABELS.get(kind, kind)
        yield [str(seq), when_cell(created_at), text_cell(kind_label),
               text_cell(usage_description(usage_delta_id=usage_delta_id, category=category, day=day, note=note,
                                           kind_label=kind_label)),
               text_cell(category), when_cell(day), money_cell(units), money_cell(amount), money_cell(balance_after),
               text_cell(agency_wallet_reference(usage_delta_id=usage_delta_id, seq=seq)), text_cell(note)]
