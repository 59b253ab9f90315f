"""Admin forms for OAuth clients: lists are typed one per line, and every value is checked as the IdP uses it."""

from __future__ import annotations

from django import forms

from clients.models import (
    DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME,
    DEFAULT_REFRESH_TOKEN_LIFETIME,
    GRANT_AUTHORIZATION_CODE,
    GRANT_CLIENT_CREDENTIALS,
    GRANT_TOKEN_EXCHANGE,
    Client,
)

GRANT_CHOICES = [
    (GRANT_AUTHORIZATION_CODE, "Authorization code with PKCE (people signing in)"),
    (GRANT_CLIENT_CREDENTIALS, "Client credentials (a service acting for itself)"),
    (GRANT_TOKEN_EXCHANGE, "Token exchange (a service acting for a user at another service; RFC 8693)"),
]


class LinesField(forms.CharField):
    """A list typed one value per line (or separated by spaces); cleans to a list without blanks or repeats."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 70})

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        super().__init__(strip=True, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(value)
        if isinstance(value, str) and "\n" not in value:
            return "\n".join(value.split())
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list | tuple):
            return list(dict.fromkeys(value))
        return list(dict.fromkeys((value or "").split()))


class ClientListFields(forms.Form):
    """The fields typed as lists, shared by the create and change forms."""

    grant_types = forms.MultipleChoiceField(choices=GRANT_CHOICES, widget=forms.CheckboxSelectMultiple)
    redirect_uris = LinesField(label="Redirect URIs",
                               help_text="Exact https URIs (or http on a loopback address), one per line.")
    post_logout_redirect_uris = LinesField(label="Post-logout redirect URIs",
                                           help_text="Where RP-initiated logout may return to, one per line.")
    allowed_origins = LinesField(help_text="Browser origins allowed to call the token endpoint (CORS), one per line.")
    allowed_scopes = LinesField(help_text="Scopes the client may request, e.g. openid profile email roles orders:read.")
    audiences = LinesField(help_text="Audiences (resource servers) its access tokens may name, one per line.")


class ClientCreateForm(ClientListFields):
    """Every field of a client. Validation is the model's (clients/models.py), run by the `client_create` service."""

    field_order = ["name", "client_type"]
    name = forms.CharField(max_length=255)
    client_type = forms.ChoiceField(
        choices=Client.CLIENT_TYPES,
        help_text="Confidential clients keep a secret (servers); public clients cannot (SPAs, mobile apps) and "
        "must use PKCE.",
    )
    default_audience = forms.CharField(max_length=255, required=False, help_text="Empty: the first audience.")
    skip_consent = forms.BooleanField(
        required=False, label="First-party", help_text="First-party clients skip the consent page."
    )
    access_token_lifetime = forms.IntegerField(min_value=1, initial=DEFAULT_ACCESS_TOKEN_LIFETIME,
                                               help_text="Seconds.")
    refresh_token_lifetime = forms.IntegerField(min_value=1, initial=DEFAULT_REFRESH_TOKEN_LIFETIME,
                                                help_text="Absolute lifetime of a refresh-token family, seconds.")
    refresh_token_idle_lifetime = forms.IntegerField(min_value=1, initial=DEFAULT_REFRESH_TOKEN_IDLE_LIFETIME,
                                                     help_text="Seconds a refresh token may sit unused.")
    roles = forms.ModelMultipleChoiceField(
        queryset=Client._meta.get_field("roles").related_model.objects.all(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Roles carried by the client's own (client-credentials) tokens.",
    )


class ClientChangeForm(ClientListFields, forms.ModelForm):
    """Edit a client; its id, type and secret are not edited here (rotate the secret from its own page)."""

    class Meta:
        model = Client
        fields = [
            "name", "enabled", "grant_types", "redirect_uris", "post_logout_redirect_uris", "allowed_origins",
            "allowed_scopes", "audiences", "default_audience", "skip_authorization", "access_token_lifetime",
            "refresh_token_lifetime", "refresh_token_idle_lifetime", "roles",
        ]
        labels = {"skip_authorization": "First-party"}
        # Django's admin CSS makes number inputs 5em wide, too narrow for lifetimes in seconds.
        widgets = {name: forms.NumberInput(attrs={"class": "vBigIntegerField"}) for name in (
            "access_token_lifetime", "refresh_token_lifetime", "refresh_token_idle_lifetime")}
        widgets["roles"] = forms.CheckboxSelectMultiple
        help_texts = {"skip_authorization": "First-party clients skip the consent page."}

    def clean(self):
        cleaned = super().clean()
        # Stored space-separated (DOT's format); the model's clean() then checks each URI and scope.
        for field in ("redirect_uris", "post_logout_redirect_uris", "allowed_origins", "allowed_scopes"):
            if field in cleaned:
                cleaned[field] = " ".join(cleaned[field])
        return cleaned
