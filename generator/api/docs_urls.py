from django.urls import path

from generator.api import document_endpoints

urlpatterns = [path("", document_endpoints.docs, name="api-docs")]
