"""Admin forms bound to the IdP's own user model."""

from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm

from accounts.models import User


class IdpUserCreationForm(AdminUserCreationForm):
    class Meta(AdminUserCreationForm.Meta):
        model = User
        fields = ("username", "email", "roles")


class IdpUserChangeForm(UserChangeForm):
    class Meta(UserChangeForm.Meta):
        model = User
        fields = "__all__"
