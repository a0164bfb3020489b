from django import forms

from agencies.models import Agency
from agencies.plans import BillingPeriod, Plan
from rebill.text import validate_name


class AgencyCreateForm(forms.Form):
    name = forms.CharField(max_length=120, validators=[validate_name])
    slug = forms.CharField(max_length=40, help_text="The agency's sub-domain: <slug>.<platform domain>.")
    plan = forms.ChoiceField(choices=Plan.choices)
    billing_period = forms.ChoiceField(choices=BillingPeriod.choices)
    custom_domain = forms.CharField(max_length=253, required=False, help_text="Optional white-label domain.")
    admin_email = forms.EmailField(label="First agency admin's email")
    admin_full_name = forms.CharField(max_length=150, required=False, validators=[validate_name])
    admin_password = forms.CharField(
        widget=forms.PasswordInput, required=False, help_text="Leave empty to set it later from the invitation."
    )


class AgencyChangeForm(forms.ModelForm):
    """The platform admin's edit form: the same rules for the name as when the agency was created."""

    name = forms.CharField(max_length=120, validators=[validate_name])

    class Meta:
        model = Agency
        fields = ["name"]
