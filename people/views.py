from django.contrib.auth import login, logout
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from people.forms import SetPasswordForm, SignInForm
from people.services import LoginRefused, invitation_accept, invitation_user, user_sign_in
from rebill.forms import add_service_errors
from rebill.tenancy import in_public_schema


@require_http_methods(["GET", "POST"])
def sign_in(request: HttpRequest) -> HttpResponse:
    form = SignInForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = user_sign_in(request=request, **form.cleaned_data)
        except LoginRefused as refusal:
            form.add_error(None, str(refusal))
        else:
            login(request, user)
            next_url = request.POST.get("next", "")
            if url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
                return redirect(next_url)
            return redirect("admin:index" if in_public_schema() else "home")
    return render(request, "people/sign_in.html", {"form": form, "next": request.GET.get("next", "")})


@require_POST
def sign_out(request: HttpRequest) -> HttpResponse:
    logout(request)
    return redirect("people:login")


@require_http_methods(["GET", "POST"])
def invitation(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invited = invitation_user(token=token)
    except ValidationError as error:
        return render(request, "people/invitation_invalid.html", {"message": error.messages[0]}, status=400)
    form = SetPasswordForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitation_accept(token=token, password=form.cleaned_data["password"])
        except ValidationError as error:
            add_service_errors(form, ValidationError({"password": error.messages}))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            return redirect("home")
    return render(request, "people/invitation.html", {"form": form, "invited": invited})
