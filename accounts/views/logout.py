"""Signing out of the IdP itself: a confirmation page, then a POST that ends the session."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse


class LogoutView(auth_views.LogoutView):
    """Django's LogoutView (POST only, CSRF-protected, never cached), with a confirmation page on GET.

    A GET never signs anyone out: a link or an <img> on another site must not end the session (logout CSRF).
    The POST calls django.contrib.auth.logout, which flushes the session row, clears the session cookie and sends
    user_logged_out (where the audit event and the session list are kept), then redirects to LOGOUT_REDIRECT_URL
    or to a same-host `next`. Relying parties use RP-initiated logout at /o/logout/ instead.
    """

    http_method_names = ["get", "post", "options"]
    template_name = "accounts/logout.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        return self.render_to_response(self.get_context_data(**kwargs))

    def get_context_data(self, **kwargs) -> dict:
        context = super().get_context_data(**kwargs)
        context[self.redirect_field_name] = self.get_redirect_url()  # "" unless it stays on this host
        return context

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        was_signed_in = request.user.is_authenticated
        response = super().post(request, *args, **kwargs)
        if was_signed_in:
            # Stored in the messages cookie, which outlives the flushed session, and shown on the next page.
            messages.success(request, "You have signed out.")
        return response
