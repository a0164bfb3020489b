from django import forms

from subaccounts.models import Membership


class SubAccountForm(forms.Form):
    name = forms.CharField(max_length=150)
    contact_email = forms.EmailField(required=False)
    phone = forms.CharField(max_length=30, required=False)


class MembershipAddForm(forms.Form):
    email = forms.EmailField()
    full_name = forms.CharField(max_length=150, required=False)
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.ACCOUNT_ADMIN)
    password = forms.CharField(
        required=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to email them an invitation to set their own password.",
    )
