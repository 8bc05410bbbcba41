from django.urls import path

from generator import views

app_name = "generator"

urlpatterns = [
    path("", views.home, name="home"),
    path("generate/", views.generate, name="generate"),
    path("jobs/", views.jobs, name="jobs"),
    path("jobs/<uuid:pk>/", views.job_detail, name="job-detail"),
    path("jobs/<uuid:pk>/cancel", views.job_cancel, name="job-cancel"),
    path("jobs/<uuid:pk>/retry", views.job_retry, name="job-retry"),
    path("gallery/", views.gallery, name="gallery"),
    path("videos/<uuid:pk>/poster.jpg", views.poster, name="poster"),
    path("videos/<uuid:pk>/delete", views.video_delete, name="video-delete"),
    path("storages/", views.storages, name="storages"),
    path("storages/connect", views.storage_connect, name="storage-connect"),
    path("storages/<int:pk>/check", views.storage_check, name="storage-check"),
    path("storages/<int:pk>/browse", views.storage_browse, name="storage-browse"),
    path("storages/<int:pk>/thumbnail", views.storage_thumbnail, name="storage-thumbnail"),
    path(
        "storages/<int:pk>/disconnect",
        views.storage_disconnect,
        name="storage-disconnect",
    ),
    path("credits/", views.credits, name="credits"),
    path("keys/", views.api_keys, name="keys"),
    path("keys/create", views.api_key_create, name="key-create"),
    path("keys/<int:pk>/revoke", views.api_key_revoke, name="key-revoke"),
    path("team/", views.team, name="team"),
    path("team/invite", views.team_invite, name="team-invite"),
    path("team/members/<int:pk>", views.member_update, name="member-update"),
    path("team/members/<int:pk>/remove", views.member_remove, name="member-remove"),
    path("team/switch", views.team_switch, name="team-switch"),
    path("team/webhook", views.team_webhook, name="team-webhook"),
    path("invite/<str:token>/", views.invite_accept, name="invite-accept"),
]
