import re
from decimal import Decimal

from django import forms
from django.core.exceptions import ValidationError

from agencies.plans import Product, multiplier_error
from rebilling.services import BULK_OPERATIONS

_PLAIN_NUMBER = re.compile(r"^\d{1,6}(\.\d{1,12})?$")


class MultiplierField(forms.CharField):
    """A multiplier typed by a person: a plain number such as 1.05 (no exponents, NaN or signs), 1.00–10.00,
    at most 4 decimal places. Empty means "follow the default"."""

    def __init__(self, **kwargs: object) -> None:
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.widget.attrs.update({"inputmode": "decimal", "autocomplete": "off", "size": "8", "maxlength": "20"})

    def to_python(self, value: object) -> Decimal | None:  # type: ignore[override]
        text = str(super().to_python(value) or "").strip().removesuffix("x").strip()
        if not text:
            return None
        if not _PLAIN_NUMBER.match(text):
            raise ValidationError("Enter a multiplier such as 1.05.")
        multiplier = Decimal(text)
        if error := multiplier_error(multiplier):
            raise ValidationError(error)
        return multiplier


class MultipliersForm(forms.Form):
    """One field per product; blank = follow the agency's default (or, agency-wide, the platform's 1.05x)."""

    def __init__(self, *args: object, initial_multipliers: dict[str, Decimal] | None = None, **kwargs: object
                 ) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        for product in Product:
            self.fields[product.value] = MultiplierField(label=str(product.label))
            if initial_multipliers and product.value in initial_multipliers:
                self.fields[product.value].initial = f"{initial_multipliers[product.value]:.4f}"

    def multipliers(self) -> dict[str, Decimal | None]:
        return {product.value: self.cleaned_data.get(product.value) for product in Product}


class AutoRechargeForm(forms.Form):
    amount = forms.DecimalField(label="Add this amount ($)", max_digits=12, decimal_places=2)
    threshold = forms.DecimalField(label="when the balance is below ($)", max_digits=12, decimal_places=2)


class BulkForm(forms.Form):
    subaccounts = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={
        "required": "Select at least one sub-account."})
    operation = forms.ChoiceField(choices=list(BULK_OPERATIONS.items()))

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        # Any id may be posted; the service answers "No such sub-account" for ids this agency doesn't have.
        posted = self.data.getlist("subaccounts") if hasattr(self.data, "getlist") else []
        field = self.fields["subaccounts"]
        assert isinstance(field, forms.TypedMultipleChoiceField)
        field.choices = [(value, value) for value in posted if str(value).isdigit()]
        for product in Product:
            self.fields[f"multiplier_{product.value}"] = MultiplierField(label=str(product.label))

    def multipliers(self) -> dict[str, Decimal | None]:
        chosen = {product.value: self.cleaned_data.get(f"multiplier_{product.value}") for product in Product}
        return {product: value for product, value in chosen.items() if value is not None}
