from django import forms


class TwilioCredentialsForm(forms.Form):
    account_sid = forms.CharField(label="Twilio Account SID", max_length=34,
                                  widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}))
    # Never rendered back, even after an error.
    auth_token = forms.CharField(label="Auth token", max_length=64,
                                 widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}))
