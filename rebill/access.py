"""Who may open which page. Anything a caller may not see answers 404, as if it did not exist."""

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse

View = Callable[..., HttpResponse]


# The checks are module-level functions, called on every request, so that mutation testing can reach them
# (a decorator's body runs once, at import).
def agency_staff_check(request: HttpRequest) -> None:
    if not request.user.is_agency_staff:  # type: ignore[union-attr]
        raise Http404("Not found")


def agency_admin_check(request: HttpRequest) -> None:
    if not request.user.is_agency_admin:  # type: ignore[union-attr]
        raise Http404("Not found")


def agency_staff_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        agency_staff_check(request)
        return view(request, *args, **kwargs)

    return wrapper


def agency_admin_required(view: View) -> View:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        agency_admin_check(request)
        return view(request, *args, **kwargs)

    return wrapper
