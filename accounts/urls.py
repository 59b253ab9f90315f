"""URLs of the browser sign-in pages."""

from django.urls import path
from django.views.generic import RedirectView

from accounts.views import account, password
from accounts.views.login import LoginView
from accounts.views.logout import LogoutView

urlpatterns = [
    # The IdP's front door (where RP-initiated logout lands without a post_logout_redirect_uri): the account page,
    # which asks a signed-out visitor to sign in.
    path("", RedirectView.as_view(pattern_name="account"), name="home"),
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("account/", account.account, name="account"),
    path("account/sessions/<int:pk>/revoke/", account.session_revoke, name="account_session_revoke"),
    path("account/sessions/revoke-others/", account.sessions_revoke_others, name="account_sessions_revoke_others"),
    path("account/consents/<int:client_pk>/revoke/", account.consent_withdraw, name="account_consent_revoke"),
    path("account/password/", password.PasswordChangeView.as_view(), name="password_change"),
    path("password-reset/", password.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/done/", password.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path("reset/<uidb64>/<token>/", password.PasswordResetConfirmView.as_view(), name="password_reset_confirm"),
    path("reset/done/", password.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
]
