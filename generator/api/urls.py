from django.urls import path, re_path

from generator.api import storages, views

app_name = "api"

urlpatterns = [
    path("video/generate", views.generate, name="generate"),
    path("video/generate/<int:pk>", views.generation_detail, name="generation-detail"),
    path("video/generate/<int:pk>/cancel", views.generation_cancel, name="generation-cancel"),
    path("account", views.account, name="account"),
    path("openapi.json", views.openapi, name="openapi"),
    path("storage/storage-types", storages.storage_types, name="storage-types"),
    path("storage/storages", storages.storage_collection, name="storages"),
    path("storage/storages/<int:pk>", storages.storage_item, name="storage-detail"),
    # Last: any other /v1/ path answers 404 with the envelope instead of an HTML page.
    re_path(r"^(?P<path>.*)$", views.not_found, name="not-found"),
]
