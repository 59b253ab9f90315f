"""The sign-in page: Django's LoginView with the IdP's form and a `next` that stays on this IdP."""

from django.contrib.auth import views as auth_views

from accounts.forms import LoginForm
from accounts.redirects import safe_next_path


class LoginView(auth_views.LoginView):
    """Django's LoginView: CSRF-protected, never cached, the session key rotated at login (auth.login).

    Every refusal re-renders the page with status 200 and the one message of LoginForm. `next` is followed only
    when it is a path on this IdP (accounts/redirects.py); anything else is dropped, both from the redirect and
    from the hidden field of the page, and the browser lands on LOGIN_REDIRECT_URL.
    """

    form_class = LoginForm
    template_name = "accounts/login.html"
    redirect_authenticated_user = False  # a signed-in user may sign in again, e.g. as someone else

    def get_redirect_url(self) -> str:
        requested = self.request.POST.get(self.redirect_field_name, self.request.GET.get(self.redirect_field_name))
        return safe_next_path(requested) or ""
