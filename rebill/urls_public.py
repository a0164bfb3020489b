"""URLs on the platform's own domain."""

from django.contrib import admin
from django.urls import path

from rebill import views

admin.site.site_header = "Rebill platform"
admin.site.site_title = "Rebill platform"

urlpatterns = [
    path("", views.platform_home, name="platform-home"),
    path("admin/", admin.site.urls),
]
