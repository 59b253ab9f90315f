"""OAuth clients in the admin: created through the service, secrets shown exactly once, rotation and disabling."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Subquery
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect

from audit import events
from audit.admin_mixins import AuditedAdminMixin
from audit.models import Event
from clients.forms import ClientChangeForm, ClientCreateForm
from clients.models import Client, TokenExchangePolicy
from clients.services import IssuedClient, client_create, client_disable, client_rotate_secret


def _secret_page(request: HttpRequest, admin_view, issued: IssuedClient, *, title: str) -> HttpResponse:
    """The one page that ever shows a client secret; never cached, never stored, never repeated."""
    context = {
        **admin_view.admin_site.each_context(request),
        "title": title,
        "opts": admin_view.opts,
        "client": issued.client,
        "client_secret": issued.client_secret,
    }
    # The views that call this are wrapped in never_cache, which sends `no-store`.
    return TemplateResponse(request, "admin/clients/client/secret_once.html", context)


class TokenExchangePolicyInline(admin.TabularInline):
    model = TokenExchangePolicy
    extra = 0
    fields = ["subject_audience", "target_audience", "created"]
    readonly_fields = ["created"]


class ClientAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Registered by django-oauth-toolkit through OAUTH2_PROVIDER["APPLICATION_ADMIN_CLASS"].

    Edits are audited by the mixin (admin.change); creation, rotation and disabling are audited by their services,
    so those write Django's LogEntry history directly, without a second event.
    """

    form = ClientChangeForm
    list_display = ["name", "client_id", "client_type", "grants", "audience_list", "skip_authorization", "enabled",
                    "last_token_at", "events_link"]
    list_filter = ["client_type", "enabled", "skip_authorization"]
    search_fields = ["name", "client_id"]
    readonly_fields = ["client_id", "client_type", "secret_rotated_at", "created", "updated"]
    filter_horizontal = []
    actions = ["disable_selected"]
    inlines = [TokenExchangePolicyInline]
    view_on_site = False  # DOT's get_absolute_url names a page this IdP does not serve
    change_form_template = "admin/clients/client/change_form.html"

    def get_queryset(self, request):
        last_token = (
            Event.objects.filter(client_id=OuterRef("client_id"), type=events.TOKEN_ISSUED)
            .order_by("-created_at")
            .values("created_at")[:1]
        )
        return super().get_queryset(request).annotate(_last_token_at=Subquery(last_token))

    def get_fieldsets(self, request, obj=None):
        return [
            (None, {"fields": ["name", "client_id", "client_type", "enabled", "skip_authorization"]}),
            ("Grants and redirects", {"fields": ["grant_types", "redirect_uris", "post_logout_redirect_uris",
                                                 "allowed_origins"]}),
            ("Tokens", {"fields": ["allowed_scopes", "audiences", "default_audience", "access_token_lifetime",
                                   "refresh_token_lifetime", "refresh_token_idle_lifetime", "roles"]}),
            ("History", {"fields": ["secret_rotated_at", "created", "updated"]}),
        ]

    @admin.display(description="grants")
    def grants(self, client: Client) -> str:
        return ", ".join(client.grant_types)

    @admin.display(description="audiences")
    def audience_list(self, client: Client) -> str:
        return ", ".join(client.audiences)

    @admin.display(description="last token", ordering="_last_token_at")
    def last_token_at(self, client: Client):
        return client._last_token_at or "never"

    @admin.display(description="events")
    def events_link(self, client: Client) -> str:
        url = reverse("admin:audit_event_changelist") + "?" + urlencode({"client_id": client.client_id})
        return format_html('<a href="{}">events</a>', url)

    # --- create: through the service, then the secret once ------------------------------------------------
    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = ClientCreateForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            data = dict(form.cleaned_data)
            roles = data.pop("roles")
            try:
                issued = client_create(**data, request=request)
            except ValidationError as error:
                for field, messages_ in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, messages_)
            else:
                issued.client.roles.set(roles)
                admin.ModelAdmin.log_addition(self, request, issued.client, [{"added": {}}])
                if issued.client_secret is None:
                    messages.success(request, f"Created public client {issued.client.client_id}; it has no secret.")
                    return HttpResponseRedirect(reverse("admin:clients_client_change", args=[issued.client.pk]))
                return _secret_page(request, self, issued, title="Client created: copy its secret now")
        context = {
            **self.admin_site.each_context(request),
            "title": "Add client",
            "opts": self.opts,
            "form": form,
            "add": True,
        }
        return TemplateResponse(request, "admin/clients/client/add_form.html", context)

    # --- rotate the secret: confirmation, then the new secret once -----------------------------------------
    def get_urls(self):
        rotate = self.admin_site.admin_view(self.rotate_secret_view)
        return [path("<int:pk>/rotate-secret/", rotate, name="clients_client_rotate_secret"), *super().get_urls()]

    @method_decorator(never_cache)
    @method_decorator(csrf_protect)
    def rotate_secret_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        client = get_object_or_404(Client, pk=pk)
        if not self.has_change_permission(request, client):
            raise PermissionDenied
        if client.client_type != Client.CLIENT_CONFIDENTIAL:
            messages.error(request, "Public clients have no secret to rotate.")
            return HttpResponseRedirect(reverse("admin:clients_client_change", args=[client.pk]))
        if request.method == "POST":
            issued = client_rotate_secret(client=client, request=request)
            admin.ModelAdmin.log_change(self, request, client, "Rotated the client secret.")
            return _secret_page(request, self, issued, title="Secret rotated: copy the new secret now")
        context = {**self.admin_site.each_context(request), "title": "Rotate client secret", "opts": self.opts,
                   "client": client}
        return TemplateResponse(request, "admin/clients/client/rotate_confirmation.html", context)

    # --- disable ---------------------------------------------------------------------------------------------
    @admin.action(description="Disable selected clients (they get no new tokens; their tokens stop working)")
    def disable_selected(self, request: HttpRequest, queryset) -> None:
        count = 0
        for client in queryset.filter(enabled=True):
            client_disable(client=client, request=request)
            admin.ModelAdmin.log_change(self, request, client, "Disabled the client.")
            count += 1
        self.message_user(request, f"Disabled {count} client(s).", messages.SUCCESS)
