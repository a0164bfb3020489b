from django.urls import path

from people import views

app_name = "people"
urlpatterns = [
    path("login/", views.sign_in, name="login"),
    path("logout/", views.sign_out, name="logout"),
    path("invitation/<str:token>/", views.invitation, name="invitation"),
]
