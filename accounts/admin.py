"""Users, roles and sign-in lockouts in the Django admin."""

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.widgets import FilteredSelectMultiple
from django.contrib.auth.admin import GroupAdmin as DjangoGroupAdmin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.models import Group
from django.db.models import Count, Exists, OuterRef
from django.db.models.functions import Lower
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.http import urlencode

from accounts.forms import IdpUserChangeForm, IdpUserCreationForm
from accounts.models import LoginThrottle, Role, User
from accounts.services import user_lock, user_password_reset_send, user_sign_out_everywhere, user_unlock
from accounts.throttling import login_lockout_clear, login_throttles_locked
from audit.admin_mixins import AuditedAdminMixin


def _events_url(**filters) -> str:
    return reverse("admin:audit_event_changelist") + "?" + urlencode(filters)


class RoleForm(forms.ModelForm):
    """A role with its members, who are added and removed here as well as on each user's page."""

    members = forms.ModelMultipleChoiceField(
        queryset=User.objects.order_by("username"),
        required=False,
        widget=FilteredSelectMultiple("members", is_stacked=False),
    )

    class Meta:
        model = Role
        fields = ["name", "description"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["members"].initial = self.instance.users.all()

    def _save_m2m(self):
        super()._save_m2m()
        self.instance.users.set(self.cleaned_data["members"])


# Django's group admin, audited like every other change made in the console.
admin.site.unregister(Group)


@admin.register(Group)
class GroupAdmin(AuditedAdminMixin, DjangoGroupAdmin):
    pass


@admin.register(Role)
class RoleAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = RoleForm
    list_display = ["name", "description", "member_count", "created"]
    search_fields = ["name", "description"]
    ordering = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_member_count=Count("users"))

    @admin.display(description="members", ordering="_member_count")
    def member_count(self, role: Role) -> int:
        return role._member_count


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    form = IdpUserChangeForm
    add_form = IdpUserCreationForm
    list_display = ["username", "email", "role_list", "is_active", "lock_status", "is_staff", "last_login",
                    "events_link"]
    list_filter = ["roles", "is_active", "is_staff", "is_superuser"]
    search_fields = ["username", "email", "first_name", "last_name", "subject"]
    filter_horizontal = ["roles", "groups", "user_permissions"]
    readonly_fields = ["subject", "last_login", "date_joined"]
    fieldsets = (
        (None, {"fields": ("username", "password", "subject")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Roles", {"fields": ("roles",)}),
        ("Permissions", {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("username", "email", "usable_password", "password1", "password2"),
                "description": "Set a password now, or choose “Password-based authentication: Disabled” to email "
                               "the user a link to choose their own."}),
        ("Roles", {"fields": ("roles",)}),
    )
    actions = ["lock_users", "unlock_users", "sign_out_everywhere", "send_password_reset"]
    change_form_template = "admin/accounts/user/change_form.html"

    # Only superusers grant or take away administrative power, or act on superusers' accounts; a helpdesk
    # administrator with "change user" would otherwise make themselves, or lock out, a superuser.
    PRIVILEGE_FIELDS = ("is_superuser", "is_staff", "groups", "user_permissions")

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += [field for field in self.PRIVILEGE_FIELDS if field not in fields]
        return fields

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def _actionable(self, request, queryset) -> list[User]:
        """The selected users this administrator may act on: never themselves, superusers only for superusers."""
        users = [user for user in queryset if user.pk != request.user.pk
                 and (request.user.is_superuser or not user.is_superuser)]
        skipped = queryset.count() - len(users)
        if skipped:
            self.message_user(request, f"Skipped {skipped} account(s): your own, or a superuser's, which only a "
                              "superuser may change.", messages.WARNING)
        return users

    def get_queryset(self, request):
        # Throttled: some sign-in lock (any IP) is running for the username or the email address.
        throttled = login_throttles_locked().filter(username__in=[OuterRef("_username_lower"),
                                                                  OuterRef("_email_lower")])
        return (
            super().get_queryset(request)
            .prefetch_related("roles")
            .annotate(_username_lower=Lower("username"), _email_lower=Lower("email"))
            .annotate(_throttled=Exists(throttled))
        )

    @admin.display(description="roles")
    def role_list(self, user: User) -> str:
        return ", ".join(user.role_names())

    @admin.display(description="lock status")
    def lock_status(self, user: User) -> str:
        if not user.is_active:
            return "locked"
        return "sign-in throttled" if getattr(user, "_throttled", False) else "—"

    @admin.display(description="events")
    def events_link(self, user: User) -> str:
        return format_html('<a href="{}">events</a>', _events_url(user__id__exact=user.pk))

    def response_add(self, request, obj, post_url_continue=None):
        if not obj.has_usable_password():
            if user_password_reset_send(user=obj, request=request):
                self.message_user(request, f"Emailed {obj.email} a link to choose a password.", messages.SUCCESS)
            else:
                self.message_user(request, "The user has no password and no email address: add an email address "
                                  "and send a reset link, or set a password.", messages.WARNING)
        return super().response_add(request, obj, post_url_continue)

    @admin.action(description="Lock selected users (no sign-in; sessions and tokens end now)",
                  permissions=["change"])
    def lock_users(self, request, queryset) -> None:
        users = self._actionable(request, queryset)
        for user in users:
            user_lock(user=user, request=request)
        self.message_user(request, f"Locked {len(users)} user(s).", messages.SUCCESS)

    @admin.action(description="Unlock selected users (and clear their sign-in lockouts)", permissions=["change"])
    def unlock_users(self, request, queryset) -> None:
        users = self._actionable(request, queryset)
        for user in users:
            user_unlock(user=user, request=request)
        self.message_user(request, f"Unlocked {len(users)} user(s).", messages.SUCCESS)

    @admin.action(description="Sign selected users out everywhere (sessions and refresh tokens)",
                  permissions=["change"])
    def sign_out_everywhere(self, request, queryset) -> None:
        totals = {"sessions": 0, "refresh_tokens": 0}
        for user in self._actionable(request, queryset):
            ended = user_sign_out_everywhere(user=user, request=request)
            totals["sessions"] += ended["sessions"]
            totals["refresh_tokens"] += ended["refresh_tokens"]
        self.message_user(request, f"Ended {totals['sessions']} session(s) and revoked {totals['refresh_tokens']} "
                          "refresh token(s).", messages.SUCCESS)

    @admin.action(description="Email selected users a password-reset link", permissions=["change"])
    def send_password_reset(self, request, queryset) -> None:
        users = self._actionable(request, queryset)
        sent = sum(user_password_reset_send(user=user, request=request) for user in users)
        skipped = len(users) - sent
        self.message_user(request, f"Sent {sent} reset link(s).", messages.SUCCESS)
        if skipped:
            self.message_user(request, f"{skipped} user(s) have no email address or are locked; nothing was sent "
                              "to them.", messages.WARNING)


class LockedNowFilter(admin.SimpleListFilter):
    title = "locked now"
    parameter_name = "locked"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        locked = login_throttles_locked().values("pk")
        if self.value() == "yes":
            return queryset.filter(pk__in=locked)
        if self.value() == "no":
            return queryset.exclude(pk__in=locked)
        return queryset


@admin.register(LoginThrottle)
class LoginThrottleAdmin(admin.ModelAdmin):
    """Failure counters and locks: read-only, cleared only through the audited action (accounts/throttling.py)."""

    list_display = ["scope", "username", "ip", "failures", "last_failure_at", "locked_until", "locked_now"]
    list_filter = [LockedNowFilter, "scope"]
    search_fields = ["username", "ip"]
    ordering = ["-last_failure_at"]
    readonly_fields = ["scope", "username", "ip", "failures", "first_failure_at", "last_failure_at", "locked_until"]
    fields = readonly_fields
    actions = ["clear_lockouts"]

    @admin.display(description="locked now?", boolean=True)
    def locked_now(self, throttle: LoginThrottle) -> bool:
        return throttle.locked_until is not None and throttle.locked_until > timezone.now()

    def has_add_permission(self, request) -> bool:
        return False  # counters are made by failed sign-ins only

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # no editing of counters; the change page is a read-only view

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # it would delete without recording lockout.cleared
        return actions

    def delete_model(self, request, obj: LoginThrottle) -> None:
        login_lockout_clear(throttles=[obj], request=request)

    def delete_queryset(self, request, queryset) -> None:
        login_lockout_clear(throttles=list(queryset), request=request)

    @admin.action(description="Clear selected lockouts", permissions=["delete"])
    def clear_lockouts(self, request, queryset) -> None:
        cleared = login_lockout_clear(throttles=list(queryset), request=request)
        self.message_user(request, f"Cleared {cleared} lockout(s).", messages.SUCCESS)
