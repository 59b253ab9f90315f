"""Changing a password (current one required) and resetting a forgotten one by email, on Django's own views."""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import forms as auth_forms
from django.contrib.auth import views as auth_views
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import resolve_url
from django.urls import reverse_lazy

from accounts.models import User
from accounts.services import (
    user_password_change,
    user_password_change_refused,
    user_password_reset_complete,
    user_password_reset_refused,
    user_password_reset_requested,
    user_session_expire,
)
from accounts.sessions import END_PASSWORD_GUESSING

# A stolen session cookie must not become an unthrottled oracle for the password: after this many wrong current
# passwords in one session, the session is ended and the next guess needs a sign-in (which is throttled).
PASSWORD_CHANGE_MAX_FAILURES = 5
SESSION_PASSWORD_CHANGE_FAILURES = "idp_password_change_failures"


class PasswordChangeForm(auth_forms.PasswordChangeForm):
    """Django's form (current password checked first, then AUTH_PASSWORD_VALIDATORS), in the page's words."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["old_password"].label = "Current password"


class PasswordChangeView(auth_views.PasswordChangeView):
    """Django's view (login required, CSRF-protected, the current password checked, AUTH_PASSWORD_VALIDATORS run).

    On success this session stays signed in, every other session of the user ends, and password.changed is
    recorded.
    """

    form_class = PasswordChangeForm
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("account")

    def form_valid(self, form) -> HttpResponse:
        user_password_change(user=form.user, new_password=form.cleaned_data["new_password1"], request=self.request)
        self.request.session.pop(SESSION_PASSWORD_CHANGE_FAILURES, None)
        messages.success(self.request, "Your password was changed. Your other sessions were signed out.")
        return HttpResponseRedirect(self.get_success_url())

    def form_invalid(self, form) -> HttpResponse:
        if form.has_error("old_password", "password_incorrect"):
            failures = self.request.session.get(SESSION_PASSWORD_CHANGE_FAILURES, 0) + 1
            self.request.session[SESSION_PASSWORD_CHANGE_FAILURES] = failures
            user_password_change_refused(user=self.request.user, request=self.request, failures=failures)
            if failures >= PASSWORD_CHANGE_MAX_FAILURES:
                user_session_expire(request=self.request, reason=END_PASSWORD_GUESSING)
                messages.error(self.request, "Your current password was entered wrongly too often. Sign in again.")
                return HttpResponseRedirect(resolve_url(settings.LOGIN_URL))
        return super().form_invalid(form)


def _same_email(typed: str, stored: str) -> bool:
    # As Django's PasswordResetForm: compare after Unicode compatibility normalisation and case folding.
    return unicodedata.normalize("NFKC", typed).casefold() == unicodedata.normalize("NFKC", stored).casefold()


class PasswordResetForm(auth_forms.PasswordResetForm):
    """Django's form, also for active users without a usable password and remembering whom it matched.

    An account created without a password (`user create` with no --password-stdin) is meant to get its first
    password through a reset, so it is included; Django's own form leaves such accounts out.
    """

    matched_users: list[User]

    def get_users(self, email: str) -> list[User]:
        candidates = User._default_manager.filter(email__iexact=email, is_active=True)
        self.matched_users = [user for user in candidates if _same_email(email, user.email)]
        return self.matched_users


class PasswordResetView(auth_views.PasswordResetView):
    """Ask for a reset link by email. The answer is the same whether or not an account has that address."""

    form_class = PasswordResetForm
    template_name = "accounts/password_reset_form.html"
    subject_template_name = "registration/password_reset_subject.txt"
    email_template_name = "registration/password_reset_email.txt"
    success_url = reverse_lazy("password_reset_done")

    def form_valid(self, form) -> HttpResponse:
        # The link is built from the configured issuer, never from the request's Host header.
        issuer = urlsplit(settings.IDP_ISSUER)
        form.save(
            domain_override=issuer.netloc,
            use_https=issuer.scheme == "https",
            subject_template_name=self.subject_template_name,
            email_template_name=self.email_template_name,
            token_generator=self.token_generator,
            request=self.request,
            extra_email_context={"valid_minutes": max(1, settings.PASSWORD_RESET_TIMEOUT // 60)},
        )
        user_password_reset_requested(
            email=form.cleaned_data["email"], users=form.matched_users, request=self.request
        )
        return HttpResponseRedirect(self.get_success_url())


class PasswordResetDoneView(auth_views.PasswordResetDoneView):
    template_name = "accounts/password_reset_done.html"


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's view: the link's token is single-use and expires after PASSWORD_RESET_TIMEOUT seconds.

    The token moves from the URL into the session before the form is shown, so it never leaks in a Referer.
    Completing it ends every session of the user and records password.reset; it does not sign anyone in.
    """

    template_name = "accounts/password_reset_confirm.html"
    success_url = reverse_lazy("password_reset_complete")
    post_reset_login = False

    def dispatch(self, *args, **kwargs) -> HttpResponse:
        response = super().dispatch(*args, **kwargs)
        if not self.validlink and not isinstance(response, HttpResponseRedirect):
            user_password_reset_refused(user=self.user, request=self.request)
        return response

    def form_valid(self, form) -> HttpResponse:
        response = super().form_valid(form)  # sets the password, which spends the token, and forgets the token
        user_password_reset_complete(user=form.user, request=self.request)
        return response


class PasswordResetCompleteView(auth_views.PasswordResetCompleteView):
    template_name = "accounts/password_reset_complete.html"
