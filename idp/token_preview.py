"""Token preview for administrators: the claims a user's tokens from a client would carry, without issuing one.

Like Keycloak's client-scope evaluation: the same claim builders as the token endpoint (idp/claims.py), fed with
the chosen user, client, scopes and audience, so what is shown is what would be signed.
"""

from __future__ import annotations

import time

from django import forms
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import Q

from clients.models import GRANT_AUTHORIZATION_CODE, GRANT_CLIENT_CREDENTIALS, Client
from idp.claims import access_token_claims, identity_claims
from idp.constants import ACCESS_TOKEN_TYP, ID_TOKEN_TYP, IDENTITY_SCOPES, SCOPE_OPENID
from idp.keys import active_signing_key
from idp.lifetimes import client_access_token_lifetime


class TokenPreviewForm(forms.Form):
    client = forms.ModelChoiceField(queryset=Client.objects.order_by("name", "client_id"), label="Client")
    user = forms.CharField(
        label="User (username or email)", required=False, max_length=254,
        help_text="Leave empty to preview a client-credentials (service) token.",
    )
    scope = forms.CharField(
        label="Scopes", required=False, max_length=1000,
        help_text="Space-separated; empty means every scope the client may request.",
    )
    audience = forms.CharField(
        label="Audience", required=False, max_length=255, help_text="Empty means the client's default audience."
    )

    def clean(self):
        cleaned = super().clean()
        client: Client | None = cleaned.get("client")
        if client is None:
            return cleaned
        scopes = (cleaned.get("scope") or "").split() or client.scope_list
        unknown = [scope for scope in scopes if scope not in client.scope_list]
        if unknown:
            self.add_error("scope", f"The client may not request: {' '.join(unknown)}.")
        audience = (cleaned.get("audience") or "").strip() or client.default_audience or client.client_id
        if cleaned.get("audience") and audience not in client.audiences:
            self.add_error("audience", "The client may not obtain tokens for this audience (RFC 8707 invalid_target).")
        username = (cleaned.get("user") or "").strip()
        user = None
        if username:
            user = get_user_model().objects.filter(Q(username__iexact=username) | Q(email__iexact=username)).first()
            if user is None:
                self.add_error("user", "No user has this username or email address.")
            elif GRANT_AUTHORIZATION_CODE not in client.grant_types:
                self.add_error("user", "This client cannot act for users: it has no authorization-code grant.")
        elif GRANT_CLIENT_CREDENTIALS not in client.grant_types:
            self.add_error("user", "Choose a user: this client has no client-credentials grant.")
        cleaned.update(scopes=scopes, resolved_audience=audience, resolved_user=user)
        return cleaned


def token_preview(*, client: Client, user, scopes: list[str], audience: str) -> dict:
    """The headers and claims of the access token (and, for `openid` with a user, the ID token) that would be
    issued; `now` stands in for the issue time. Nothing is signed or stored."""
    now = int(time.time())
    service_token = user is None
    if service_token:
        # A service token never carries identity scopes (idp/scopes.py).
        scopes = [scope for scope in scopes if scope not in IDENTITY_SCOPES]
    expires_in = client_access_token_lifetime(client)
    key = active_signing_key()
    access = access_token_claims(
        issuer=settings.IDP_ISSUER, client=client, user=user, scopes=scopes, audience=audience,
        issued_at=now, expires_in=expires_in, auth_time=None if service_token else now,
    )
    preview = {
        "access_token": {"header": {"alg": key.algorithm, "kid": key.kid, "typ": ACCESS_TOKEN_TYP}, "claims": access},
        "id_token": None,
        "userinfo": None,
        "expires_in": expires_in,
    }
    if not service_token and SCOPE_OPENID in scopes:
        # OpenID Connect Core §2; `nonce`, `at_hash` and `sid` come from the actual request and session.
        id_claims = {
            "iss": settings.IDP_ISSUER,
            "sub": str(user.subject),
            "aud": client.client_id,
            "iat": now,
            "exp": now + settings.IDP_ID_TOKEN_LIFETIME,
            "auth_time": now,
            **identity_claims(user, scopes),
        }
        preview["id_token"] = {"header": {"alg": key.algorithm, "kid": key.kid, "typ": ID_TOKEN_TYP},
                               "claims": id_claims}
        preview["userinfo"] = {"sub": str(user.subject), **identity_claims(user, scopes)}
    return preview
