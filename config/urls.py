from django.contrib import admin
from django.urls import include, path

from generator import views as dashboard_views
from generator.api import links as link_views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", dashboard_views.LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("v1/", include("generator.api.urls")),
    path("v/<str:token>", link_views.link_serve, name="link"),
    path("api/docs", include("generator.api.docs_urls")),
    path("", include("generator.urls")),
]
