"""URLs on the platform's own domain."""

from django.contrib import admin
from django.urls import include, path

from people import views as people_views
from rebill import views

admin.site.site_header = "Rebill platform"
admin.site.site_title = "Rebill platform"

urlpatterns = [
    path("favicon.ico", views.favicon),
    path("", views.platform_home, name="platform-home"),
    # Platform staff sign in through the same locked-out-after-failures form as everyone else.
    path("admin/login/", people_views.sign_in),
    path("admin/", admin.site.urls),
    path("", include("stripe_connect.urls_public")),
    path("", include("people.urls")),
]
