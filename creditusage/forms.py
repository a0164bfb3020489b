from __future__ import annotations

from datetime import date

from django import forms

from agencies.plans import Product
from creditusage.models import SpendAlertPolicy
from creditusage.selectors import CREDIT, DEBIT, Cursor, EntryFilter


class EntryFilterForm(forms.Form):
    start = forms.DateField(required=False, label="From")
    end = forms.DateField(required=False, label="To")
    direction = forms.ChoiceField(required=False, label="Credit/debit",
                                  choices=[("", "All"), (CREDIT, "Credits"), (DEBIT, "Debits")])
    product = forms.ChoiceField(required=False, choices=[("", "All products"), *Product.choices])
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


class DashboardFilterForm(forms.Form):
    month = forms.DateField(required=False, input_formats=["%Y-%m"], label="Month (YYYY-MM)")
    product = forms.ChoiceField(required=False, choices=[("", "All products"), *Product.choices])
    subaccount = forms.TypedMultipleChoiceField(required=False, coerce=int, label="Sub-accounts")

    def __init__(self, *args: object, subaccount_choices: list[tuple[int, str]], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.fields["subaccount"].choices = subaccount_choices  # type: ignore[attr-defined]

    def month_or(self, today: date) -> date:
        return self.cleaned_data.get("month") or today.replace(day=1)


class SpendAlertPolicyForm(forms.ModelForm):
    class Meta:
        model = SpendAlertPolicy
        fields = ["enabled", "multiple", "floor", "auto_pause"]
        labels = {"multiple": "Alert when a day's spend passes this many times its 30-day average",
                  "floor": "…and this amount ($)", "auto_pause": "Pause the sub-account's phone usage on an alert"}
