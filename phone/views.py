"""Manage Client → phone provider: use the agency's own Twilio account, or LC Phone."""

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from people.models import User
from phone.forms import TwilioCredentialsForm
from phone.selectors import provider_section
from phone.services import provider_set_lc_phone, provider_set_twilio
from rebill.access import agency_admin_required
from rebill.forms import add_service_errors
from subaccounts.selectors import subaccount_for_agency_staff


@agency_admin_required
@require_POST
def provider_twilio_save(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    subaccount = subaccount_for_agency_staff(user=user, subaccount_id=subaccount_id)
    form = TwilioCredentialsForm(request.POST)
    if form.is_valid():
        try:
            provider_set_twilio(subaccount=subaccount, by=user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, "Twilio credentials checked and saved. Usage is read from this account now.")
            return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
    section = provider_section(user=user, subaccount=subaccount, twilio_form=form)
    if section is None:
        raise Http404("Not found")
    return render(request, "phone/provider_page.html", {"subaccount": subaccount, "phone_provider": section},
                  status=400)


@agency_admin_required
@require_POST
def provider_lc_phone_use(request: HttpRequest, subaccount_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    subaccount = subaccount_for_agency_staff(user=user, subaccount_id=subaccount_id)
    try:
        provider_set_lc_phone(subaccount=subaccount, by=user)
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, "This sub-account uses LC Phone.")
    return redirect("subaccounts:manage", subaccount_id=subaccount.pk)
