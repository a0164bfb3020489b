from django import forms

from rebill.text import validate_name
from subaccounts.models import Membership


class SubAccountForm(forms.Form):
    name = forms.CharField(max_length=150, validators=[validate_name])
    contact_email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=30, required=False)


class MembershipAddForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=150, required=False, validators=[validate_name])
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ACCOUNT_ADMIN)
