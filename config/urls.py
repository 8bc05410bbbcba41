from django.contrib import admin
from django.urls import include, path

from generator.views.accounts import LoginView, LogoutView
from generator.views.bearer_links import input_link_serve, link_serve
from generator.views.upstream_hooks import upstream_webhook

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("v1/", include("generator.api.urls")),
    path("v/<str:token>", link_serve, name="link"),
    path("i/<str:token>", input_link_serve, name="input-link"),
    path("hooks/upstream/<str:token>/", upstream_webhook, name="upstream-webhook"),
    path("api/docs", include("generator.api.docs_urls")),
    path("", include("generator.urls")),
]
