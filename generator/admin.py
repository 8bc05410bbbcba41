"""Admin for operators: balances change only through the grant action, secrets never show."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.db import transaction
from django.forms.models import BaseInlineFormSet
from django.shortcuts import render
from django.utils import timezone

from generator.errors import Forbidden, ValidationFailed
from generator.forms import GrantCreditsForm
from generator.models import (
    ApiKey,
    CreditLedger,
    EngineConnection,
    Generation,
    Invite,
    Membership,
    Storage,
    Team,
    User,
    WebhookDelivery,
)
from generator.selectors import usage_total
from generator.services.apikeys import apikey_revoke
from generator.services.billing import credits_grant, month_start
from generator.services.teams import cap_change_check, member_change_as_staff, member_delete_as_staff
from generator.wording import sentence


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class LedgerInline(ReadOnlyInline):
    model = CreditLedger
    fields = ("created_at", "kind", "amount", "balance_after", "reason", "user", "actor", "generation")
    readonly_fields = fields
    ordering = ("-created_at", "-pk")
    show_change_link = False
    max_num = 0

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "actor", "generation")


def _revoke_user_keys(user: User) -> None:
    # created_by is SET_NULL: without this a deleted user's keys would live on as team keys.
    for key in ApiKey.objects.filter(created_by=user, revoked_at__isnull=True).select_related("team"):
        apikey_revoke(team=key.team, key=key)


def _cap_guarded(form_class: type[forms.ModelForm], request) -> type[forms.ModelForm]:
    """The membership form with the cap rule of services/teams.py (staff may not change their own cap)."""

    class CapGuardedForm(form_class):  # type: ignore[valid-type,misc]
        def clean(self):
            cleaned = super().clean()
            if self.instance.pk is not None and "monthly_cap" in self.changed_data:
                user = cleaned.get("user") or self.instance.user
                candidate = Membership(pk=self.instance.pk, user=user, role=cleaned.get("role") or self.instance.role)
                try:
                    cap_change_check(actor_user_id=request.user.pk, actor_role=None, membership=candidate)
                except Forbidden as exc:
                    self.add_error("monthly_cap", sentence(exc.message))
            return cleaned

    return CapGuardedForm


class MembershipInlineFormSet(BaseInlineFormSet):
    """Removing or reassigning a member on the team page revokes their keys (docs/security.md)."""

    def delete_existing(self, obj, commit=True):
        if commit:
            member_delete_as_staff(membership=obj)

    def save_existing(self, form, obj, commit=True):
        if commit:
            with transaction.atomic():
                member_change_as_staff(membership=obj)
                return super().save_existing(form, obj, commit=commit)
        return super().save_existing(form, obj, commit=commit)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
    extra = 0
    fields = ("user", "role", "monthly_cap", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        formset.form = _cap_guarded(formset.form, request)
        return formset


@admin.action(description="Grant or deduct credits…")
def grant_credits(modeladmin, request, queryset):
    """Ask for an amount and a mandatory reason, then write one ledger entry per selected team."""
    if "apply" in request.POST:
        form = GrantCreditsForm(request.POST)
        if form.is_valid():
            amount, reason = form.cleaned_data["amount"], form.cleaned_data["reason"]
            for team in queryset:
                try:
                    credits_grant(team=team, amount=amount, actor=request.user, reason=reason)
                except ValidationFailed as exc:
                    modeladmin.message_user(request, f"{team.name}: {exc.message}", messages.ERROR)
                else:
                    modeladmin.message_user(
                        request,
                        f"{team.name}: {amount:+d} credits, balance now {team.balance}.",
                        messages.SUCCESS,
                    )
            return None
    else:
        form = GrantCreditsForm()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Grant or deduct credits",
        "teams": queryset,
        "form": form,
        "opts": modeladmin.model._meta,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return render(request, "admin/generator/team/grant_credits.html", context)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "balance", "monthly_allowance", "rate_per_second", "rate_per_minute", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("balance", "usage_this_month", "created_at", "updated_at")
    fields = (
        "name",
        "slug",
        "balance",
        "usage_this_month",
        "monthly_allowance",
        "rate_per_second",
        "rate_per_minute",
        "webhook_url",
        "created_at",
        "updated_at",
    )
    prepopulated_fields = {"slug": ("name",)}
    inlines = (MembershipInline, LedgerInline)
    actions = (grant_credits,)

    @admin.display(description="Usage this month")
    def usage_this_month(self, obj: Team) -> str:
        if obj.pk is None:
            return "-"
        since = month_start(timezone.now())
        usage = usage_total(team=obj, since=since)
        return f"{usage['credits']} credits, {usage['videos']} billed videos since {since:%Y-%m-%d}"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    ordering = ("email",)
    list_display = ("email", "name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "name")
    list_filter = ("is_staff", "is_superuser", "is_active")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Profile", {"fields": ("name",)}),
        (
            "Permissions",
            {
                "fields": (
                    "is_active",
                    "is_staff",
                    "is_superuser",
                    "groups",
                    "user_permissions",
                )
            },
        ),
        ("Dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),)
    filter_horizontal = ("groups", "user_permissions")

    def delete_model(self, request, obj) -> None:
        with transaction.atomic():
            _revoke_user_keys(obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for user in queryset:
                _revoke_user_keys(user)
            super().delete_queryset(request, queryset)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "team", "role", "monthly_cap", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "team__name")
    autocomplete_fields = ("user", "team")
    list_select_related = ("user", "team")

    def get_form(self, request, obj=None, change=False, **kwargs):
        return _cap_guarded(super().get_form(request, obj, change=change, **kwargs), request)

    # Every way the admin removes a member revokes their keys, like the dashboard does.
    def save_model(self, request, obj, form, change) -> None:
        with transaction.atomic():
            member_change_as_staff(membership=obj)
            super().save_model(request, obj, form, change)

    def delete_model(self, request, obj) -> None:
        member_delete_as_staff(membership=obj)

    def delete_queryset(self, request, queryset) -> None:
        with transaction.atomic():
            for membership in queryset:
                member_delete_as_staff(membership=membership)


@admin.register(Invite)
class InviteAdmin(admin.ModelAdmin):
    list_display = ("email", "team", "role", "expires_at", "used_at", "revoked_at", "created_by")
    list_filter = ("role",)
    search_fields = ("email", "team__name")
    readonly_fields = ("token_digest", "used_at", "revoked_at", "created_by", "created_at")
    list_select_related = ("team", "created_by")


@admin.action(description="Revoke selected keys")
def revoke_keys(modeladmin, request, queryset):
    count = 0
    for key in queryset.filter(revoked_at__isnull=True).select_related("team"):
        apikey_revoke(team=key.team, key=key)
        count += 1
    modeladmin.message_user(request, f"Revoked {count} key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "team", "created_by", "scopes", "last_used_at", "revoked_at", "created_at")
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix", "team__name", "created_by__email")
    readonly_fields = ("prefix", "digest", "team", "created_by", "last_used_at", "revoked_at", "created_at")
    fields = ("name", "team", "created_by", "prefix", "scopes", "last_used_at", "revoked_at", "created_at")
    list_select_related = ("team", "created_by")
    actions = (revoke_keys,)

    def has_add_permission(self, request) -> bool:
        return False  # keys are created by members or the CLI, so the secret is shown to them once


@admin.register(EngineConnection)
class EngineConnectionAdmin(admin.ModelAdmin):
    """Staff set each connection's price here; the key is never shown (it is encrypted and not a field)."""

    list_display = ("name", "team", "type", "price_5s", "price_10s", "created_at")
    list_filter = ("type",)
    search_fields = ("name", "team__name")
    fields = ("team", "name", "type", "parameters", "price_5s", "price_10s")
    readonly_fields = ("team", "name", "type", "parameters")

    def has_add_permission(self, request) -> bool:
        return False  # connections are made by teams, with a live test of their key


@admin.register(Storage)
class StorageAdmin(admin.ModelAdmin):
    list_display = ("name", "team", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("name", "team__name")
    # secrets_encrypted is deliberately absent: secrets never appear in the admin.
    fields = ("team", "name", "type", "parameters", "created_by", "created_at")
    readonly_fields = ("team", "type", "parameters", "created_by", "created_at")
    list_select_related = ("team",)

    def has_add_permission(self, request) -> bool:
        return False  # connecting checks the storage and encrypts credentials: use the dashboard or API


@admin.register(Generation)
class GenerationAdmin(admin.ModelAdmin):
    list_display = ("id", "team", "created_by", "status", "stage", "progress", "duration", "cost", "created_at")
    list_filter = (
        "status",
        "stage",
        "duration",
        "is_temporary",
        ("created_at", admin.DateFieldListFilter),
    )
    search_fields = ("=id", "uuid", "team__name", "created_by__email", "generated_prompt")
    list_select_related = ("team", "created_by")
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = [f.name for f in Generation._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(CreditLedger)
class CreditLedgerAdmin(admin.ModelAdmin):
    list_display = ("created_at", "team", "kind", "amount", "balance_after", "reason", "user", "actor")
    list_filter = ("kind",)
    search_fields = ("team__name", "reason", "user__email", "actor__email")
    list_select_related = ("team", "user", "actor")
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("generation", "attempt", "status_code", "error", "created_at")
    readonly_fields = ("generation", "url", "attempt", "status_code", "error", "created_at")
    list_select_related = ("generation",)

    def has_add_permission(self, request) -> bool:
        return False


admin.site.site_header = "Motionshop admin"
admin.site.site_title = "Motionshop admin"
admin.site.index_title = "Teams, members, credits and jobs"
