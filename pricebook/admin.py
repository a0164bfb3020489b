from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.http import HttpRequest

from pricebook.models import LcPhonePrice
from pricebook.services import lc_phone_price_add, lc_phone_price_errors


class LcPhonePriceForm(forms.ModelForm):
    class Meta:
        model = LcPhonePrice
        fields = ["category", "unit", "unit_price", "effective_from"]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not self.errors:
            errors = lc_phone_price_errors(
                category=data["category"], unit=data["unit"], unit_price=data["unit_price"],
                effective_from=data["effective_from"],
            )
            if errors:
                raise ValidationError(errors)
        return data


@admin.register(LcPhonePrice)
class LcPhonePriceAdmin(admin.ModelAdmin):
    """Platform staff change a price by adding a row; existing rows are history and stay as they are."""

    form = LcPhonePriceForm
    list_display = ["category", "unit", "unit_price", "effective_from", "created_by", "created_at"]
    list_filter = ["category"]
    ordering = ["category", "-effective_from"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: LcPhonePrice, form: Any, change: bool) -> None:
        created = lc_phone_price_add(
            category=obj.category, unit=obj.unit, unit_price=obj.unit_price, effective_from=obj.effective_from,
            by=request.user,  # type: ignore[arg-type]
        )
        obj.pk = created.pk
