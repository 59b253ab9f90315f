"""django-oauth-toolkit's token admins, audited: revoking, editing or deleting a token in the admin is an event.

Registered by DOT itself through OAUTH2_PROVIDER["*_ADMIN_CLASS"]; tokens are stored only as checksums, so these
pages never show a usable token.
"""

from django.contrib import admin
from oauth2_provider import admin as dot_admin

from audit.admin_mixins import AuditedAdminMixin, admin_change_record

REVOKE = "revoke"


class _AuditedRevocation:
    """DOT's "Revoke selected tokens" action, with one admin.change event (reason revoke) per token."""

    @admin.action(description="Revoke selected tokens (and their refresh-token families)")
    def revoke_tokens(self, request, queryset):
        tokens = list(queryset)
        super().revoke_tokens(request, queryset)
        for token in tokens:
            admin_change_record(request=request, obj=token, action=REVOKE, message="Revoked the token.")


class AccessTokenAdmin(_AuditedRevocation, AuditedAdminMixin, dot_admin.AccessTokenAdmin):
    pass


class RefreshTokenAdmin(_AuditedRevocation, AuditedAdminMixin, dot_admin.RefreshTokenAdmin):
    pass


class GrantAdmin(AuditedAdminMixin, dot_admin.GrantAdmin):
    pass


class IDTokenAdmin(AuditedAdminMixin, dot_admin.IDTokenAdmin):
    pass
