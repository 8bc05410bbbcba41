from django.urls import path

from generator.api import views

urlpatterns = [path("", views.docs, name="api-docs")]
