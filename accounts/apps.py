"""Users, roles, sign-in pages and the user and role CLI."""

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Users and roles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_logged_out

        from accounts.signals import remember_sign_in, track_session_end, track_session_start

        user_logged_in.connect(remember_sign_in, dispatch_uid="accounts.remember_sign_in")
        user_logged_in.connect(track_session_start, dispatch_uid="accounts.track_session_start")
        user_logged_out.connect(track_session_end, dispatch_uid="accounts.track_session_end")
