"""CSV exports, streamed row by row: exact decimal strings (6 places), ISO dates, and no text cell that a
spreadsheet would read as a formula."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal

from django.http import StreamingHttpResponse

from agency_wallets.models import AgencyWalletEntry
from creditusage.agency_wallet import agency_wallet_entry_description, agency_wallet_entry_reference
from creditusage.selectors import MICRO, AgencyLine, Line
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


def line_row(line: Line) -> list[str]:
    row = [when_cell(line.created_at), text_cell(line.kind), text_cell(line.product), text_cell(line.description),
           money_cell(line.units), money_cell(line.unit_price), money_cell(line.amount),
           money_cell(line.balance_after), text_cell(line.reference)]
    if isinstance(line, AgencyLine):
        row += [money_cell(line.cost), "" if line.multiplier is None else f"{line.multiplier:f}",
                money_cell(line.profit)]
    return row


RECONCILIATION_HEADER = ["subaccount_id", "subaccount", "seq", "created_at", "type", "category", "product", "day",
                         "units", "agency_cost", "multiplier", "client_amount", "balance_after",
                         "provider_account", "charge_id", "payment_intent_id", "note"]


def reconciliation_row(entry: WalletEntry) -> list[str]:
    charge = entry.charge
    return [str(entry.wallet.subaccount_id), text_cell(entry.wallet.subaccount.name), str(entry.seq),
            when_cell(entry.created_at), entry.kind, text_cell(entry.category), entry.product, when_cell(entry.day),
            money_cell(entry.units_delta), money_cell(entry.cost_delta),
            "" if entry.multiplier is None else f"{entry.multiplier:f}", money_cell(entry.amount),
            money_cell(entry.balance_after), text_cell(entry.provider_account),
            "" if charge is None else str(charge.pk), "" if charge is None else text_cell(charge.payment_intent_id),
            text_cell(entry.note)]


AGENCY_WALLET_HEADER = ["seq", "date", "type", "description", "category", "usage_day", "units", "amount",
                        "balance_after", "reference", "note"]


def agency_wallet_row(entry: AgencyWalletEntry) -> list[str]:
    return [str(entry.seq), when_cell(entry.created_at), text_cell(entry.get_kind_display()),
            text_cell(agency_wallet_entry_description(entry)), text_cell(entry.category), when_cell(entry.day),
            money_cell(entry.units_delta), money_cell(entry.amount), money_cell(entry.balance_after),
            text_cell(agency_wallet_entry_reference(entry)), text_cell(entry.note)]
