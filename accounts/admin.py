"""Users and roles in the Django admin."""

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from accounts.forms import IdpUserChangeForm, IdpUserCreationForm
from accounts.models import Role, User


@admin.register(Role)
class RoleAdmin(admin.ModelAdmin):
    list_display = ["name", "description", "member_count", "created"]
    search_fields = ["name", "description"]
    ordering = ["name"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_member_count=Count("users"))

    @admin.display(description="members", ordering="_member_count")
    def member_count(self, role: Role) -> int:
        return role._member_count


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = IdpUserChangeForm
    add_form = IdpUserCreationForm
    list_display = ["username", "email", "role_list", "is_active", "is_staff", "last_login"]
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
        (None, {"classes": ("wide",), "fields": ("username", "email", "usable_password", "password1", "password2")}),
        ("Roles", {"fields": ("roles",)}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("roles")

    @admin.display(description="roles")
    def role_list(self, user: User) -> str:
        return ", ".join(user.role_names())
