from django.urls import path, re_path

from generator.api import account_endpoints, document_endpoints, storage_endpoints, video_endpoints

app_name = "api"

urlpatterns = [
    path("video/generate", video_endpoints.generate, name="generate"),
    path("video/generate/<int:pk>", video_endpoints.generation_detail, name="generation-detail"),
    path("video/generate/<int:pk>/cancel", video_endpoints.generation_cancel, name="generation-cancel"),
    path("account", account_endpoints.account, name="account"),
    path("openapi.json", document_endpoints.openapi, name="openapi"),
    path("storage/storage-types", storage_endpoints.storage_types, name="storage-types"),
    path("storage/storages", storage_endpoints.storage_collection, name="storages"),
    path("storage/storages/<int:pk>", storage_endpoints.storage_item, name="storage-detail"),
    # Last: any other /v1/ path answers 404 with the envelope instead of an HTML page.
    re_path(r"^(?P<path>.*)$", document_endpoints.not_found, name="not-found"),
]
