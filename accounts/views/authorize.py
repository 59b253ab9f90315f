"""The authorization endpoint's consent step: django-oauth-toolkit's AuthorizationView, remembering consent."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from oauth2_provider.exceptions import FatalClientError, OAuthToolkitError
from oauth2_provider.models import get_application_model
from oauth2_provider.settings import oauth2_settings
from oauth2_provider.views import AuthorizationView
from oauthlib.oauth2.rfc6749.errors import InvalidClientIdError, MismatchingRedirectURIError

from accounts.consents import consent_covers, consent_deny, consent_grant, consent_remembered_scopes, scopes_described

PROMPT_NONE = "none"
PROMPT_CONSENT = "consent"
ERROR_CONSENT_REQUIRED = "consent_required"  # OpenID Connect Core §3.1.2.6


def _with_issuer(uri: str, issuer: str) -> str:
    """The redirect URI with exactly one `iss` query parameter: this issuer (RFC 9207 §2)."""
    parts = urlsplit(uri)
    query = [(key, value) for key, value in parse_qsl(parts.query, keep_blank_values=True) if key != "iss"]
    query.append(("iss", issuer))
    return urlunsplit(parts._replace(query=urlencode(query)))


@method_decorator(never_cache, name="dispatch")  # the page carries a CSRF token and the request's parameters
class ConsentAuthorizationView(AuthorizationView):
    """DOT's authorization view; the consent page appears only when the user has not approved these scopes before.

    - First-party clients (DOT's `skip_authorization`) never show it: DOT approves them itself.
    - Otherwise remembered consent (accounts.Consent) that covers every requested scope approves at once, unless
      the client sent `prompt=consent` (OpenID Connect Core §3.1.2.1), which always shows the page.
    - `prompt=none` with consent still needed answers `consent_required` instead of a page (Core §3.1.2.6).
    - Approving remembers the union of old and new scopes; denying returns `access_denied` (RFC 6749 §4.1.2.1).
    - Every redirect to the client carries `iss` (RFC 9207), errors included.
    """

    template_name = "oauth2_provider/authorize.html"

    def get(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        # DOT would also approve silently whenever an unexpired access token covers the scopes ("approval_prompt"
        # auto), even with prompt=consent or after the consent row was removed. Remembered consent has one source
        # of truth here, so DOT's token-based shortcut is switched off whatever the client sent.
        query = request.GET.copy()
        query["approval_prompt"] = "force"
        request.GET = query
        self.validated_credentials = None
        response = super().get(request, *args, **kwargs)
        if not self._is_consent_page(response):
            return response  # a redirect (first-party, login, error) or an error page: DOT has decided
        return self._consent_decision(request, response)

    def validate_authorization_request(self, request: HttpRequest):
        scopes, credentials = super().validate_authorization_request(request)
        # Kept so a remembered consent can finish the request exactly as DOT's own first-party path does.
        self.validated_credentials = credentials
        return scopes, credentials

    def _is_consent_page(self, response: HttpResponse) -> bool:
        return (
            isinstance(response, TemplateResponse)
            and response.status_code == 200
            and "application" in response.context_data
            and self.validated_credentials is not None
        )

    def _consent_decision(self, request: HttpRequest, response: TemplateResponse) -> HttpResponse:
        context = response.context_data
        application, scopes = context["application"], context["scopes"]
        prompt = set(request.GET.get("prompt", "").split())
        if PROMPT_CONSENT not in prompt and consent_covers(user=request.user, client=application, scopes=scopes):
            try:
                uri, _headers, _body, _status = self.create_authorization_response(
                    request=request, scopes=" ".join(scopes), credentials=self.validated_credentials, allow=True
                )
            except OAuthToolkitError as error:
                return self.error_response(error, application)
            return self.redirect(uri, application)
        if PROMPT_NONE in prompt:
            # OpenID Connect Core §3.1.2.6: no page may be shown; the client learns that consent is needed.
            # oauthlib has verified redirect_uri against the client's registration (RFC 6749 §4.1.2.1).
            parameters = {"error": ERROR_CONSENT_REQUIRED}
            if self.validated_credentials.get("state"):
                parameters["state"] = self.validated_credentials["state"]
            redirect_uri = self.validated_credentials["redirect_uri"]
            separator = "&" if "?" in redirect_uri else "?"
            return self.redirect(redirect_uri + separator + urlencode(parameters), application)
        remembered = consent_remembered_scopes(user=request.user, client=application)
        context["requested_scopes"] = scopes_described(scopes, remembered=remembered)
        context["asked_before"] = bool(remembered)
        # Shown so the person can spot a look-alike client before approving (RFC 6749 §10.2, §10.12).
        context["redirect_host"] = urlsplit(self.validated_credentials["redirect_uri"]).netloc
        return response

    def form_invalid(self, form) -> HttpResponse:
        # Hidden fields missing or altered: the page explains; nothing is sent to the client.
        response = super().form_invalid(form)
        response.status_code = 400
        return response

    def form_valid(self, form) -> HttpResponse:
        # The hidden fields come back from the browser: DOT looks the client up without a guard (an unknown
        # client_id would be a 500) and, on deny, redirects to the posted redirect_uri unchecked. Both are
        # verified first, so an error is never sent to a URI the client did not register (RFC 6749 §4.1.2.1).
        client = get_application_model().objects.filter(client_id=form.cleaned_data["client_id"]).first()
        if client is None or not client.is_usable(self.request):
            return self.error_response(FatalClientError(error=InvalidClientIdError()), application=None)
        if not client.redirect_uri_allowed(form.cleaned_data["redirect_uri"]):
            return self.error_response(FatalClientError(error=MismatchingRedirectURIError()), application=None)
        self.consent_client = client
        scopes = form.cleaned_data["scope"].split()
        if not form.cleaned_data.get("allow"):
            consent_deny(user=self.request.user, client=client, scopes=scopes, request=self.request)
        return super().form_valid(form)

    def create_authorization_response(self, request, scopes, credentials, allow):
        result = super().create_authorization_response(request, scopes, credentials, allow)
        # Reached only when oauthlib issued a code. A POST here is the person pressing "Allow" on the page.
        if allow and request.method == "POST":
            consent_grant(user=request.user, client=self.consent_client, scopes=scopes.split(), request=request)
        return result

    def redirect(self, redirect_to: str, application) -> HttpResponse:
        # DOT adds `iss` to successful responses only; RFC 9207 §2 asks for it on error responses too, so that a
        # client can tell which issuer refused (mix-up attacks, RFC 9700 §4.4).
        if oauth2_settings.COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS:
            redirect_to = _with_issuer(redirect_to, oauth2_settings.oauth2_authorization_server_issuer(self.request))
        return super().redirect(redirect_to, application)
