"""The IdP's admin site: branded, staff only, with an operator dashboard and the token preview."""

from __future__ import annotations

import json

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache

from idp.console import console_overview
from idp.token_preview import TokenPreviewForm, token_preview


class IdpAdminSite(admin.AdminSite):
    site_header = "Identity provider console"
    site_title = "IdP console"
    index_title = "Console"
    site_url = "/account/"  # "View site": the IdP's own pages start at the account page

    def index(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        """The landing dashboard above Django's list of apps, for those who may read the audit log."""
        overview = console_overview() if request.user.has_perm("audit.view_event") else {}
        return super().index(request, {**overview, **(extra_context or {})})

    def get_urls(self):
        return [path("token-preview/", self.admin_view(self.token_preview_view), name="token_preview"),
                *super().get_urls()]

    @method_decorator(never_cache)
    def token_preview_view(self, request: HttpRequest) -> HttpResponse:
        """Show the claims a token would carry; the form is a GET so a preview can be linked and nothing is written.

        It shows a user's personal data and which accounts exist, so it needs the right to view users and clients.
        """
        if not (request.user.has_perm("accounts.view_user") and request.user.has_perm("clients.view_client")):
            raise PermissionDenied
        form = TokenPreviewForm(request.GET or None)
        preview = None
        if form.is_bound and form.is_valid():
            data = form.cleaned_data
            preview = token_preview(client=data["client"], user=data["resolved_user"], scopes=data["scopes"],
                                    audience=data["resolved_audience"])
        context = {
            **self.each_context(request),
            "title": "Token preview",
            "form": form,
            "preview": preview,
            "access_json": json.dumps(preview["access_token"], indent=2) if preview else "",
            "id_json": json.dumps(preview["id_token"], indent=2) if preview and preview["id_token"] else "",
            "userinfo_json": json.dumps(preview["userinfo"], indent=2) if preview and preview["userinfo"] else "",
        }
        return TemplateResponse(request, "admin/idp/token_preview.html", context)
