from django import forms


class CustomerSearchForm(forms.Form):
    q = forms.CharField(label="Name, email or customer id", max_length=200)


class CustomerLinkForm(forms.Form):
    customer_id = forms.RegexField(regex=r"^cus_\w+$", max_length=64)
