"""All models of the generator app.

Credits change only through ledger entries written by services/billing.py; the Generation row is
the truth the UI and the API read; django-q2's task table is only an operations log.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser, BaseUserManager
from django.contrib.auth.models import PermissionsMixin
from django.db import models
from django.db.models import Count, Exists, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

# Public ids are BIGINT: a larger one cannot exist, and the database would refuse to compare it.
PUBLIC_ID_MAX = 2**63 - 1


class AppendOnlyModel(models.Model):
    """A row written once and never changed (ledger entries, idempotency records, delivery attempts)."""

    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        abstract = True


class TimeStampedModel(models.Model):
    created_at = models.DateTimeField(default=timezone.now, db_index=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


def team_owned(related_name: str) -> models.ForeignKey[Team, Team]:
    """The team a row belongs to: every read is scoped to it, and the row goes with the team."""
    return models.ForeignKey("Team", on_delete=models.CASCADE, related_name=related_name)


def made_by(related_name: str = "+") -> models.ForeignKey[User | None, User | None]:
    """Who made a row; the row stays (as made by nobody) when that user is deleted."""
    return models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name=related_name
    )


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(**{f"{self.model.USERNAME_FIELD}__iexact": username})


class User(AbstractBaseUser, PermissionsMixin):
    """A person; logs in with their email and belongs to one or more teams."""

    email = models.EmailField(unique=True)
    name = models.CharField(max_length=150, blank=True)
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    def __str__(self) -> str:
        return self.email

    @property
    def display_name(self) -> str:
        return self.name or self.email


class Team(TimeStampedModel):
    """The account: credit balance, keys, storages and the gallery belong to a team."""

    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(max_length=100, unique=True)
    balance = models.IntegerField(default=0, editable=False)
    rate_per_second = models.PositiveIntegerField(null=True, blank=True)
    rate_per_minute = models.PositiveIntegerField(null=True, blank=True)
    monthly_allowance = models.PositiveIntegerField(default=0)
    webhook_url = models.URLField(max_length=512, blank=True)
    webhook_secret_encrypted = models.TextField(
        blank=True, editable=False, help_text="Fernet token of the webhook signing secret (like storage secrets)"
    )
    default_engine = models.ForeignKey(
        "EngineConnection",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The engine a request without options.engine runs on; empty = builtin",
    )

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(balance__gte=0), name="generator_team_balance_non_negative"),
            models.CheckConstraint(
                condition=Q(rate_per_second__isnull=True) | Q(rate_per_second__gte=1),
                name="generator_team_rate_per_second_min",
            ),
            models.CheckConstraint(
                condition=Q(rate_per_minute__isnull=True) | Q(rate_per_minute__gte=1),
                name="generator_team_rate_per_minute_min",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def per_second_limit(self) -> int:
        return self.rate_per_second or settings.GENERATOR_DEFAULT_PER_SECOND

    @property
    def per_minute_limit(self) -> int:
        return self.rate_per_minute or settings.GENERATOR_DEFAULT_PER_MINUTE


class Membership(TimeStampedModel):
    class Role(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Admin"
        MEMBER = "member", "Member"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.MEMBER)
    monthly_cap = models.PositiveIntegerField(null=True, blank=True, help_text="Credits per month; empty = no cap")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="generator_membership_unique_team_user"),
            models.CheckConstraint(
                condition=Q(role__in=["owner", "admin", "member"]), name="generator_membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.team} ({self.role})"

    @property
    def can_manage(self) -> bool:
        return self.role in {self.Role.OWNER, self.Role.ADMIN}


class Invite(TimeStampedModel):
    """A single-use link, valid 7 days, that creates an account in a team."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invites")
    email = models.EmailField()
    role = models.CharField(max_length=10, choices=Membership.Role.choices, default=Membership.Role.MEMBER)
    token_digest = models.CharField(max_length=64, unique=True)
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")

    def __str__(self) -> str:
        return f"Invite for {self.email} to {self.team}"


class ApiKey(TimeStampedModel):
    class Scope(models.TextChoices):
        VIDEO_GENERATION = "video_generation", "Video generation"
        STORAGE = "storage", "Storage"
        ENGINES = "engines", "Engines"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_keys"
    )
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=12)
    digest = models.CharField(max_length=64, unique=True)
    scopes = models.JSONField(default=list)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    # The creator's current role in the key's team, set by services/apikeys.apikey_authenticate.
    creator_role: str | None = None

    def __str__(self) -> str:
        return f"{self.name or 'key'} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class Connection(TimeStampedModel):
    """A team's named connection to a service outside (a storage, an engine), with its secrets encrypted."""

    name = models.CharField(max_length=50)
    type: str  # each kind of connection declares its own choices
    secrets_encrypted = models.TextField(blank=True, editable=False, help_text="Fernet token of the credentials JSON")
    created_by = made_by()

    class Meta:
        abstract = True
        constraints = [
            models.UniqueConstraint(fields=["team", "name"], name="%(app_label)s_%(class)s_unique_team_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.type})"


class Storage(Connection):
    class Type(models.TextChoices):
        S3 = "s3", "Amazon S3 / S3-compatible"
        GCS = "gcs", "Google Cloud Storage"
        LOCAL = "local", "Local folder"

    team = team_owned("storages")
    type = models.CharField(max_length=10, choices=Type.choices)
    parameters = models.JSONField(default=dict, help_text="Non-secret parameters (bucket, path, region, endpoint_url)")

    class Meta(Connection.Meta):
        constraints = [
            *Connection.Meta.constraints,
            models.CheckConstraint(condition=Q(type__in=["s3", "gcs", "local"]), name="generator_storage_type_valid"),
        ]


class EngineConnection(Connection):
    """An upstream engine a team connected with its own key (docs/engines.md); `builtin` is not a row."""

    class Type(models.TextChoices):
        CLAID = "claid", "Claid.ai"
        FAL = "fal", "fal.ai"
        REPLICATE = "replicate", "Replicate"

    team = team_owned("engines")
    type = models.CharField(max_length=10, choices=Type.choices)
    parameters = models.JSONField(default=dict, help_text="Non-secret parameters (model, base_url, inputs)")
    price_5s = models.PositiveIntegerField(default=35, help_text="Credits held for a 5 s video (staff only)")
    price_10s = models.PositiveIntegerField(default=70, help_text="Credits held for a 10 s video (staff only)")

    class Meta(Connection.Meta):
        constraints = [
            *Connection.Meta.constraints,
            models.CheckConstraint(
                condition=Q(type__in=["claid", "fal", "replicate"]), name="generator_engineconnection_type_valid"
            ),
            models.CheckConstraint(condition=~Q(name="builtin"), name="generator_engineconnection_name_not_builtin"),
        ]

    def price_for(self, duration: int) -> int:
        return self.price_10s if duration == 10 else self.price_5s


class Generation(TimeStampedModel):
    """One job: one input image -> one video."""

    class Status(models.TextChoices):
        PROCESSING = "PROCESSING", "Processing"
        DONE = "DONE", "Done"
        ERROR = "ERROR", "Error"
        CANCELLED = "CANCELLED", "Cancelled"

    class Stage(models.TextChoices):
        QUEUED = "queued", "Queued"
        FETCHING = "fetching", "Fetching"
        VALIDATING = "validating", "Validating"
        RENDERING = "rendering", "Rendering"
        SUBMITTING = "submitting", "Submitting upstream"
        WAITING = "waiting", "Waiting for the upstream"
        DOWNLOADING = "downloading", "Downloading"
        STORING = "storing", "Storing"
        DONE = "done", "Done"
        ERROR = "error", "Error"
        CANCELLED = "cancelled", "Cancelled"

    class AspectRatio(models.TextChoices):
        """The video's shape (options.aspect_ratio): "source" and the engine's ASPECT_RATIOS."""

        SOURCE = "source", "Photo's shape"
        LANDSCAPE = "16:9", "16:9 landscape"
        VERTICAL = "9:16", "9:16 vertical"
        SQUARE = "1:1", "1:1 square"
        PORTRAIT = "4:5", "4:5 portrait"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = team_owned("generations")
    created_by = made_by("generations")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations")
    request = models.JSONField(help_text="The normalised request body, as echoed by the API")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PROCESSING)
    stage = models.CharField(max_length=12, choices=Stage.choices, default=Stage.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    duration = models.PositiveSmallIntegerField(default=5)
    # Copied from request["options"] so the gallery can filter by shape on an index.
    aspect_ratio = models.CharField(max_length=8, choices=AspectRatio.choices, default=AspectRatio.SOURCE)
    cost = models.PositiveIntegerField(default=0)
    input_object = models.JSONField(default=dict, blank=True)
    output_object = models.JSONField(default=dict, blank=True)
    errors = models.JSONField(default=list, blank=True)
    generated_prompt = models.TextField(blank=True)
    source_name = models.CharField(
        max_length=255,
        blank=True,
        help_text="The photo's own file name when the input cannot tell it (an upload); see generator/naming.py",
    )
    plan = models.JSONField(default=dict, blank=True, help_text="What the motion engine did")
    attempts = models.PositiveSmallIntegerField(default=0)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # Where the files are. Temporary videos live in the default storage under video_name;
    # storage outputs live in output_storage at output_key. The poster is always in the default storage.
    is_temporary = models.BooleanField(default=True)
    video_name = models.CharField(max_length=512, blank=True)
    poster_name = models.CharField(max_length=512, blank=True)
    output_storage = models.ForeignKey(
        Storage, null=True, blank=True, on_delete=models.SET_NULL, related_name="output_generations"
    )
    output_key = models.CharField(max_length=1024, blank=True)
    engine = models.ForeignKey(
        EngineConnection, null=True, blank=True, on_delete=models.SET_NULL, related_name="generations"
    )
    # Kept when the connection is disconnected: data.engine still says where the video was made.
    engine_info = models.JSONField(default=dict, blank=True, help_text="name, type, model, upstream_id")
    upstream_state = models.JSONField(default=dict, blank=True, help_text="What the provider must remember")
    next_poll_at = models.DateTimeField(null=True, blank=True, help_text="When the ticker looks upstream next")
    submitted_at = models.DateTimeField(
        null=True, blank=True, help_text="When the upstream submit was admitted (the connection's rate windows)"
    )
    purged_at = models.DateTimeField(null=True, blank=True)
    deleted_at = models.DateTimeField(null=True, blank=True)
    # Not a column: set by selectors.queue_positions for the pages that show a job's place in the queue.
    queue_position: int | None

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["PROCESSING", "DONE", "ERROR", "CANCELLED"]),
                name="generator_generation_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(
                    stage__in=[
                        "queued",
                        "fetching",
                        "validating",
                        "rendering",
                        "submitting",
                        "waiting",
                        "downloading",
                        "storing",
                        "done",
                        "error",
                        "cancelled",
                    ]
                ),
                name="generator_generation_stage_valid",
            ),
            models.CheckConstraint(condition=Q(progress__lte=100), name="generator_generation_progress_max"),
            models.CheckConstraint(condition=Q(duration__in=[5, 10]), name="generator_generation_duration_valid"),
            models.CheckConstraint(
                condition=Q(aspect_ratio__in=["source", "16:9", "9:16", "1:1", "4:5"]),
                name="generator_generation_aspect_ratio_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="generator_generation_team_new"),
            models.Index(fields=["team", "status", "-created_at"], name="generator_generation_team_st"),
            models.Index(fields=["team", "aspect_ratio", "-created_at"], name="generator_generation_team_ar"),
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(status="PROCESSING"),
                name="generator_generation_lease",
            ),
            models.Index(
                fields=["completed_at"],
                condition=Q(is_temporary=True, purged_at__isnull=True, status="DONE"),
                name="generator_generation_purge",
            ),
            models.Index(
                fields=["next_poll_at"],
                condition=Q(status="PROCESSING", next_poll_at__isnull=False),
                name="generator_generation_waiting",
            ),
            models.Index(
                fields=["engine", "submitted_at"],
                condition=Q(submitted_at__isnull=False),
                name="generator_generation_submitted",
            ),
            # The fair rotation (selectors.queue_rotation): each team's queue, and its last start.
            models.Index(
                fields=["team", "created_at"],
                condition=Q(status="PROCESSING", stage="queued"),
                name="generator_generation_queued",
            ),
            models.Index(
                fields=["team", "-started_at"],
                condition=Q(started_at__isnull=False),
                name="generator_generation_started",
            ),
        ]

    def __str__(self) -> str:
        return f"Generation {self.pk} ({self.status})"

    @property
    def is_active(self) -> bool:
        return self.status == self.Status.PROCESSING

    @property
    def steps(self) -> list[tuple[str, str]]:
        """The stages a job of this engine goes through, for the jobs page's stepper (docs/engines.md)."""
        S = self.Stage
        upstream = self.engine_id is not None or bool((self.engine_info or {}).get("name"))
        middle = [S.SUBMITTING, S.WAITING, S.DOWNLOADING] if upstream else [S.RENDERING]
        return [
            (stage.value, stage.label) for stage in [S.QUEUED, S.FETCHING, S.VALIDATING, *middle, S.STORING, S.DONE]
        ]


class CreditLedgerQuerySet(models.QuerySet):
    """Reads of the ledger, and the one rule of what was spent (docs/credits.md)."""

    def spending(self, *, since=None) -> CreditLedgerQuerySet:
        """The entries that make up spending: holds and refunds, from `since` on if given."""
        qs = self.filter(kind__in=[CreditLedger.Kind.HOLD, CreditLedger.Kind.REFUND])
        return qs.filter(created_at__gte=since) if since is not None else qs

    def usage(self, *group_by: str):
        """Return credits spent (holds minus refunds) and billed videos, in all or per `group_by` row.

        A refunded hold (the job ended ERROR or CANCELLED) is no billed video, just as it costs no
        credits. Call it on spending(): {"credits": 35, "videos": 1}, or rows with those keys.
        """
        refunded = CreditLedger.objects.filter(generation=OuterRef("generation"), kind=CreditLedger.Kind.REFUND)
        totals = {
            "credits": Coalesce(Sum("amount"), 0) * -1,
            "videos": Count("pk", filter=Q(kind=CreditLedger.Kind.HOLD) & Q(~Exists(refunded))),
        }
        if group_by:
            return self.values(*group_by).annotate(**totals)
        return self.aggregate(**totals)


class CreditLedger(AppendOnlyModel):
    """Append-only record of every credit change; Team.balance is its running sum."""

    class Kind(models.TextChoices):
        HOLD = "hold", "Hold for a generation"
        REFUND = "refund", "Refund of a failed or cancelled generation"
        GRANT = "grant", "Grant or deduction by staff"
        ALLOWANCE = "allowance", "Monthly allowance"

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="ledger")
    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.PROTECT, related_name="ledger_entries"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The member a hold is attributed to",
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="Who made the change (staff for grants; empty for the system)",
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    amount = models.IntegerField(help_text="Signed: negative takes credits, positive gives them")
    balance_after = models.IntegerField()
    reason = models.CharField(max_length=500, blank=True)
    period = models.CharField(max_length=7, blank=True, help_text="YYYY-MM for monthly allowances")

    objects = CreditLedgerQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["hold", "refund", "grant", "allowance"]), name="generator_creditledger_kind_valid"
            ),
            models.UniqueConstraint(
                fields=["generation"], condition=Q(kind="refund"), name="generator_creditledger_one_refund"
            ),
            models.UniqueConstraint(
                fields=["generation"], condition=Q(kind="hold"), name="generator_creditledger_one_hold"
            ),
            models.UniqueConstraint(
                fields=["team", "period"], condition=Q(kind="allowance"), name="generator_creditledger_one_allowance"
            ),
            models.CheckConstraint(condition=Q(balance_after__gte=0), name="generator_creditledger_balance_after"),
        ]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="generator_creditledger_team"),
            models.Index(fields=["team", "user", "created_at"], name="generator_creditledger_member"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.amount:+d} ({self.team})"


class IdempotencyRecord(AppendOnlyModel):
    """The first response to an Idempotency-Key, replayed for 24 h."""

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="idempotency_records")
    key = models.CharField(max_length=255)
    body_digest = models.CharField(max_length=64)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty while in flight")
    response = models.JSONField(null=True, blank=True)
    generation = models.ForeignKey(Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["team", "key"], name="generator_idempotencyrecord_unique_key"),
        ]

    def __str__(self) -> str:
        return f"Idempotency-Key {self.key} ({self.team})"


class WebhookDelivery(AppendOnlyModel):
    """One attempt to POST a generation's (or a batch's) final state to the team's webhook URL."""

    generation = models.ForeignKey(
        Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    batch = models.ForeignKey(
        "Batch", null=True, blank=True, on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    url = models.URLField(max_length=512)
    attempt = models.PositiveSmallIntegerField(default=1)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "webhook deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(generation__isnull=False, batch__isnull=True)
                | Q(generation__isnull=True, batch__isnull=False),
                name="generator_webhookdelivery_one_subject",
            ),
        ]

    def __str__(self) -> str:
        subject = f"batch {self.batch_id}" if self.batch_id else f"generation {self.generation_id}"
        return f"Webhook delivery {self.attempt} for {subject}: {self.status_code or self.error}"


class Batch(TimeStampedModel):
    """One video per image with the same options; its items are submitted one by one at the team's rate.

    The dispatcher (services/batches.py) submits pending items through the normal create service;
    each submitted item's Generation is the truth about it. See docs/batches.md.
    """

    class State(models.TextChoices):
        RUNNING = "running", "Running"
        WAITING_FOR_CREDITS = "waiting_for_credits", "Waiting for credits"
        DONE = "done", "Done"
        CANCELLED = "cancelled", "Cancelled"

    id = models.BigAutoField(primary_key=True)
    uuid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    team = team_owned("batches")
    created_by = made_by("batches")
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.SET_NULL, related_name="batches")
    state = models.CharField(max_length=20, choices=State.choices, default=State.RUNNING)
    options = models.JSONField(help_text="The normalised options every item is made with")
    output = models.CharField(max_length=1024, blank=True, help_text="storage://name/dir/, or empty: temporary")
    source = models.JSONField(default=dict, blank=True, help_text="Where the inputs came from (for people)")
    item_count = models.PositiveIntegerField(default=0)
    cost_per_item = models.PositiveIntegerField(default=0)
    waiting_reason = models.CharField(max_length=500, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name_plural = "batches"
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["running", "waiting_for_credits", "done", "cancelled"]),
                name="generator_batch_state_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="generator_batch_team_new"),
            models.Index(
                fields=["team", "created_at"],
                condition=Q(state__in=["running", "waiting_for_credits"]),
                name="generator_batch_active",
            ),
        ]

    def __str__(self) -> str:
        return f"Batch {self.pk} ({self.state}, {self.item_count} items)"

    @property
    def is_active(self) -> bool:
        return self.state in {self.State.RUNNING, self.State.WAITING_FOR_CREDITS}

    @property
    def total_cost(self) -> int:
        return self.item_count * self.cost_per_item


class BatchItem(models.Model):
    """One input of a batch: pending until the dispatcher submits it, then its Generation tells its state."""

    class State(models.TextChoices):
        PENDING = "pending", "Pending"
        SUBMITTED = "submitted", "Submitted"
        CANCELLED = "cancelled", "Cancelled before it was submitted"
        REFUSED = "refused", "Refused when submitted (never charged)"

    batch = models.ForeignKey(Batch, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField(help_text="1-based, in the order the inputs were given")
    input = models.CharField(max_length=512)
    output_name = models.CharField(max_length=255, help_text="<stem>.mp4, unique in the batch")
    state = models.CharField(max_length=10, choices=State.choices, default=State.PENDING)
    generation = models.OneToOneField(
        Generation, null=True, blank=True, on_delete=models.SET_NULL, related_name="batch_item"
    )
    error = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["batch", "position"], name="generator_batchitem_unique_position"),
            models.UniqueConstraint(fields=["batch", "output_name"], name="generator_batchitem_unique_output"),
            models.CheckConstraint(
                condition=Q(state__in=["pending", "submitted", "cancelled", "refused"]),
                name="generator_batchitem_state_valid",
            ),
        ]
        indexes = [
            models.Index(
                fields=["batch", "position"], condition=Q(state="pending"), name="generator_batchitem_pending"
            ),
        ]

    def __str__(self) -> str:
        return f"Item {self.position} of batch {self.batch_id} ({self.state})"

    @property
    def status(self) -> str:
        """PENDING until submitted, then its job's status (ERROR when it was refused); see selectors.ITEM_STATUS."""
        if self.state == self.State.PENDING:
            return "PENDING"
        if self.state == self.State.CANCELLED:
            return "CANCELLED"
        if self.state == self.State.REFUSED or self.generation is None:
            return "ERROR"
        return self.generation.status
