"""Forms of the accounts app: the sign-in form, and the admin forms bound to the IdP's own user model."""

from django.contrib.auth.forms import AdminUserCreationForm, AuthenticationForm, UserChangeForm
from django.core.validators import MaxLengthValidator

from accounts.models import User

# One message for every refusal (locked, unknown user, wrong password, inactive), so the page reveals nothing.
LOGIN_FAILED_MESSAGE = "Your username or password was not recognised. Please try again."
IDENTIFIER_MAX_LENGTH = User._meta.get_field("email").max_length


class LoginForm(AuthenticationForm):
    """Django's sign-in form whose `username` field also takes an email address; one error message for everything.

    authenticate() (accounts/backends.py) does the lookup, the throttling and the audit events.
    """

    error_messages = {"invalid_login": LOGIN_FAILED_MESSAGE, "inactive": LOGIN_FAILED_MESSAGE}

    def __init__(self, request=None, *args, **kwargs):
        super().__init__(request, *args, **kwargs)
        username = self.fields["username"]
        username.label = "Username or email"
        username.max_length = IDENTIFIER_MAX_LENGTH  # an email address can be longer than a username
        username.validators = [*username.validators, MaxLengthValidator(IDENTIFIER_MAX_LENGTH)]
        username.widget.attrs.update({"maxlength": str(IDENTIFIER_MAX_LENGTH), "autocomplete": "username"})

    def confirm_login_allowed(self, user) -> None:
        # The backend never returns an inactive user; should one arrive anyway, refuse it with the same words.
        if not user.is_active:
            raise self.get_invalid_login_error()


class IdpUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "roles")


class IdpUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"
