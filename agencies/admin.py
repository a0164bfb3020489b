from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path

from agencies.forms import AgencyChangeForm, AgencyCreateForm
from agencies.models import Agency, Domain
from agencies.selectors import agencies_all
from agencies.services import agency_admin_invitation_send, agency_create, agency_plan_change
from rebill.forms import add_service_errors


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    readonly_fields = ["domain", "is_primary"]
    can_delete = False


@admin.register(Agency)
class AgencyAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "plan", "billing_period", "created_at"]
    list_filter = ["plan", "billing_period"]
    search_fields = ["name", "slug", "domains__domain"]
    readonly_fields = ["slug", "schema_name", "created_at"]
    fields = ["name", "slug", "schema_name", "plan", "billing_period", "created_at"]
    form = AgencyChangeForm
    actions = ["send_admin_invitations"]
    inlines = [DomainInline]

    def get_queryset(self, request: HttpRequest) -> Any:
        return agencies_all()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        """A changed plan goes through agency_plan_change, which re-applies the plan's rules at once."""
        new_plan = obj.plan
        if change and "plan" in form.changed_data:
            obj.plan = form.initial["plan"]
        super().save_model(request, obj, form, change)
        if change and "plan" in form.changed_data:
            effects = agency_plan_change(agency=obj, plan=new_plan, by=request.user.email)  # type: ignore[union-attr]
            obj.refresh_from_db()
            messages.info(request, f"Plan changed to {obj.get_plan_display()}; {len(effects)} sub-account(s) "
                                   "affected. The agency's admins were emailed what changed.")

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting an agency would drop its schema and every client's ledger: not a one-click action.
        return False

    @admin.action(description="Email the invitation to admins without a password")
    def send_admin_invitations(self, request: HttpRequest, queryset: Any) -> None:
        for agency in queryset:
            error_text = agency_admin_invitation_send(agency=agency)
            if error_text:
                messages.error(request, f"{agency.name}: {error_text}")
            else:
                messages.success(request, f"{agency.name}: invitations sent to every admin without a password.")

    def get_urls(self) -> list[Any]:
        create = path("create/", self.admin_site.admin_view(self.create_view), name="agencies_agency_create")
        return [create, *super().get_urls()]

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: Any = None) -> HttpResponse:
        return redirect("admin:agencies_agency_create")

    def create_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            return redirect("admin:index")
        form = AgencyCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                agency = agency_create(**form.cleaned_data, invite=False)
            except ValidationError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, f"Agency {agency.name} created.")
                if not form.cleaned_data["admin_password"]:
                    # The agency is committed; its admin's invitation goes out now, and a failure is said here.
                    error_text = agency_admin_invitation_send(agency=agency)
                    if error_text:
                        messages.error(request, f"The invitation to {form.cleaned_data['admin_email']} was not "
                                                f"sent: {error_text} Send it again with the action "
                                                "\u201cEmail the invitation to admins without a password\u201d.")
                return redirect("admin:agencies_agency_change", agency.pk)
        context = {
            **self.admin_site.each_context(request), "form": form, "title": "Create agency", "opts": self.model._meta
        }
        return TemplateResponse(request, "admin/agencies/create_agency.html", context)
