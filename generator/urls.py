from django.urls import path

from generator.views import accounts, batches, credits, gallery, generate, jobs, keys, storages, team

app_name = "generator"

urlpatterns = [
    path("", generate.home, name="home"),
    path("generate/", generate.generate, name="generate"),
    path("jobs/", jobs.jobs, name="jobs"),
    path("jobs/<uuid:pk>/", jobs.job_detail, name="job-detail"),
    path("jobs/<uuid:pk>/cancel", jobs.job_cancel, name="job-cancel"),
    path("jobs/<uuid:pk>/retry", jobs.job_retry, name="job-retry"),
    path("batches/", batches.batches, name="batches"),
    path("batches/new", batches.batch_new, name="batch-new"),
    path("batches/<uuid:pk>/", batches.batch_detail, name="batch-detail"),
    path("batches/<uuid:pk>/cancel", batches.batch_cancel, name="batch-cancel"),
    path("batches/<uuid:pk>/retry", batches.batch_retry, name="batch-retry"),
    path("batches/<uuid:pk>/results.csv", batches.batch_results, name="batch-results"),
    path("batches/<uuid:pk>/archive.zip", batches.batch_archive, name="batch-archive"),
    path("gallery/", gallery.gallery, name="gallery"),
    path("videos/<uuid:pk>/poster.jpg", gallery.poster, name="poster"),
    path("videos/<uuid:pk>/delete", gallery.video_delete, name="video-delete"),
    path("storages/", storages.storages, name="storages"),
    path("storages/connect", storages.storage_connect, name="storage-connect"),
    path("storages/<int:pk>/check", storages.storage_check, name="storage-check"),
    path("storages/<int:pk>/browse", storages.storage_browse, name="storage-browse"),
    path("storages/<int:pk>/thumbnail", storages.storage_thumbnail, name="storage-thumbnail"),
    path(
        "storages/<int:pk>/disconnect",
        storages.storage_disconnect,
        name="storage-disconnect",
    ),
    path("credits/", credits.credits, name="credits"),
    path("keys/", keys.api_keys, name="keys"),
    path("keys/create", keys.api_key_create, name="key-create"),
    path("keys/<int:pk>/revoke", keys.api_key_revoke, name="key-revoke"),
    path("team/", team.team, name="team"),
    path("team/invite", team.team_invite, name="team-invite"),
    path("team/invites/<int:pk>/revoke", team.invite_revoke, name="invite-revoke"),
    path("team/members/<int:pk>", team.member_update, name="member-update"),
    path("team/members/<int:pk>/remove", team.member_remove, name="member-remove"),
    path("team/switch", team.team_switch, name="team-switch"),
    path("team/webhook", team.team_webhook, name="team-webhook"),
    path("invite/<str:token>/", accounts.invite_accept, name="invite-accept"),
]
