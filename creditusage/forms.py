from __future__ import annotations

from datetime import date

from django import forms
from django.db.models import QuerySet
from django.forms.utils import flatatt
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from agencies.plans import Product
from agency_wallets.models import AgencyWalletEntry
from creditusage.agency_wallet import AgencyWalletFilter
from creditusage.dashboard import DashboardFilter
from creditusage.models import DetailsSharing, SpendAlertPolicy
from creditusage.selectors import CREDIT, DEBIT, Cursor, EntryFilter, month_bounds
from subaccounts.models import SubAccount


class WrittenOutSelect(forms.Select):
    """The stock select, its options written out here: the stock widget renders a template per option, which cost
    more than a whole table of 50 rows (the dashboard's sub-accounts, a page's filters)."""

    def render(self, name: str, value: object, attrs: dict | None = None, renderer: object = None) -> SafeString:
        chosen = set(self.format_value(value))
        options = format_html_join("", '<option value="{}"{}>{}</option>', (
            (option, " selected" if str(option) in chosen else "", label) for option, label in self.choices))
        return format_html('<select name="{}"{}{}>{}</select>', name, flatatt(self.build_attrs(self.attrs, attrs)),
                           " multiple" if self.allow_multiple_selected else "", options)


class SubAccountSelect(WrittenOutSelect, forms.SelectMultiple):
    """The dashboard's sub-accounts, several at once."""


class EntryFilterForm(forms.Form):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    direction = forms.ChoiceField(required=False, label="Credit/debit", widget=WrittenOutSelect,
                                  choices=[("", "All"), (CREDIT, "Credits"), (DEBIT, "Debits")])
    product = forms.ChoiceField(required=False, choices=[("", "All products"), *Product.choices],
                                widget=WrittenOutSelect)
    after = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_after(self) -> Cursor | None:
        text = self.cleaned_data.get("after") or ""
        if not text:
            return None
        try:
            return Cursor.decode(text)
        except ValueError:
            raise forms.ValidationError("This page link is not valid; start from the first page.") from None

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data

    def entry_filter(self) -> EntryFilter:
        data = self.cleaned_data
        return EntryFilter(start=data.get("start"), end=data.get("end"), direction=data.get("direction") or "",
                           product=data.get("product") or "")


MAX_RANGE_DAYS = 3 * 366  # the dashboard reads a period's whole months from the monthly rollups: cheap


class AgencyWalletFilterForm(forms.Form):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    kind = forms.ChoiceField(required=False, label="Type", choices=[("", "All"), *AgencyWalletEntry.Kind.choices],
                             widget=WrittenOutSelect)
    after = forms.IntegerField(required=False, min_value=1, widget=forms.HiddenInput)

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        return data

    def wallet_filter(self) -> AgencyWalletFilter:
        data = self.cleaned_data if self.is_bound else {}
        return AgencyWalletFilter(start=data.get("start"), end=data.get("end"), kind=data.get("kind") or "")


class SubAccountIdsField(forms.Field):
    """Sub-account ids from a multiple select; which exist is checked by the form, for the ids sent only (an
    agency may have 10,000 sub-accounts: they are never all loaded as choices)."""

    widget = SubAccountSelect

    def to_python(self, value: object) -> list[int]:
        if not value:
            return []
        values = value if isinstance(value, list | tuple) else [value]
        if not all(str(v).isdigit() for v in values) or len(values) > 100:
            raise forms.ValidationError("Choose up to 100 sub-accounts from the list.")
        return sorted({int(v) for v in values})


class DashboardFilterForm(forms.Form):
    month = forms.DateField(required=False, input_formats=["%Y-%m"], label="Month (YYYY-MM)")
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    product = forms.ChoiceField(required=False, choices=[("", "All products"), *Product.choices],
                                widget=WrittenOutSelect)
    subaccount = SubAccountIdsField(required=False, label="Sub-accounts")
    rebilled_only = forms.BooleanField(required=False, label="Rebilled only")

    def __init__(self, *args: object, subaccounts: QuerySet[SubAccount], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._subaccounts = subaccounts

    def clean_subaccount(self) -> list[int]:
        ids: list[int] = self.cleaned_data.get("subaccount") or []
        if ids and self._subaccounts.filter(pk__in=ids).count() != len(ids):
            raise forms.ValidationError("No such sub-account.")
        return ids

    def offer(self, choices: list[tuple[int, str]]) -> None:
        """The options shown: the page's sub-accounts plus those already chosen."""
        chosen = self.cleaned_data.get("subaccount") or [] if hasattr(self, "cleaned_data") else []
        named = dict(choices)
        missing = [pk for pk in chosen if pk not in named]
        named.update(self._subaccounts.filter(pk__in=missing).values_list("pk", "name"))
        self.fields["subaccount"].widget.choices = sorted(named.items(), key=lambda item: (item[1], item[0]))  # type: ignore[attr-defined]

    def clean(self) -> dict:
        data = super().clean() or {}
        start, end = data.get("start"), data.get("end")
        if (start is None) != (end is None) and not self.errors:
            raise forms.ValidationError("Give both dates of the range (or neither, for a month).")
        if start and end and start > end:
            raise forms.ValidationError("The start date must be on or before the end date.")
        if start and end and (end - start).days > MAX_RANGE_DAYS:
            raise forms.ValidationError(f"Choose a range of at most {MAX_RANGE_DAYS + 1} days.")
        return data

    def period(self, today: date) -> tuple[date, date]:
        """The range given, else the month given, else this month."""
        data = self.cleaned_data if self.is_bound else {}
        if data.get("start") and data.get("end"):
            return data["start"], data["end"]
        return month_bounds(data.get("month") or today)

    def dashboard_filter(self, today: date) -> DashboardFilter:
        data = self.cleaned_data if self.is_bound else {}
        start, end = self.period(today)
        return DashboardFilter(start=start, end=end, subaccount_ids=data.get("subaccount") or [],
                               product=data.get("product") or "", rebilled_only=bool(data.get("rebilled_only")))


class SpendAlertPolicyForm(forms.ModelForm):
    class Meta:
        model = SpendAlertPolicy
        fields = ["enabled", "multiple", "floor", "auto_pause"]
        labels = {"multiple": "Alert when a day's spend passes this many times its 30-day average",
                  "floor": "…and this amount ($)", "auto_pause": "Pause the sub-account's phone usage on an alert"}


class DetailsSharingForm(forms.ModelForm):
    class Meta:
        model = DetailsSharing
        fields = ["account_users_may_view"]
        labels = {"account_users_may_view": "Account users (not only account admins) may see their sub-account's "
                                            "credit usage details and CSV, read-only"}
