"""Signing keys in the admin: public facts only, and rotation behind a confirmation page."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from idp.keys import rotation_summary, signing_key_rotate
from idp.models import SigningKey


@admin.register(SigningKey)
class SigningKeyAdmin(admin.ModelAdmin):
    # Never the private key: not its ciphertext, not its length, not a preview.
    list_display = ["kid", "algorithm", "key_size", "state", "created", "activated_at", "retired_at"]
    list_filter = ["state", "algorithm"]
    fields = ["kid", "algorithm", "key_size", "state", "public_jwk", "created", "activated_at", "retired_at"]
    readonly_fields = fields
    ordering = ["-created", "-id"]
    change_list_template = "admin/idp/signingkey/change_list.html"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are made by rotation, never typed in

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # rotation removes retired keys once every token they signed has expired

    def has_rotate_permission(self, request: HttpRequest) -> bool:
        return request.user.is_active and request.user.is_superuser

    def get_urls(self):
        rotate = self.admin_site.admin_view(self.rotate_view)
        return [path("rotate/", rotate, name="idp_signingkey_rotate"), *super().get_urls()]

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "can_rotate": self.has_rotate_permission(request)}
        return super().changelist_view(request, extra_context)

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def rotate_view(self, request: HttpRequest) -> HttpResponse:
        """GET asks for confirmation; POST rotates and reports what happened, in the words the CLI uses."""
        if not self.has_rotate_permission(request):
            raise PermissionDenied
        if request.method == "POST":
            result = signing_key_rotate(request=request)
            for sentence in rotation_summary(result):
                messages.success(request, sentence)
            return HttpResponseRedirect(reverse("admin:idp_signingkey_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": "Rotate signing keys",
            "opts": self.opts,
            "keys": SigningKey.objects.order_by("-created", "-id"),
        }
        return TemplateResponse(request, "admin/idp/signingkey/rotate_confirmation.html", context)
