"""Browser sign-in pages."""

from django.contrib.auth import views as auth_views


class LoginView(auth_views.LoginView):
    """Django's login view: the session key is rotated at login and `next` must point at this host."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = False
