"""The framework-neutral API: validate_bearer, bearer_token, require and the WWW-Authenticate value."""

import idp_resource_server
import pytest
from idp_resource_server import (
    Claims,
    InsufficientScope,
    InvalidToken,
    ResourceServerSettings,
    TokenMissing,
    TokenValidator,
    bearer_token,
    configure,
    require,
    validate_bearer,
    www_authenticate,
)

from tests.toolkit.conftest import AUDIENCE


@pytest.fixture
def default_validator():
    yield
    idp_resource_server.bearer._default_validator = None


def test_validate_bearer_returns_the_claims_of_a_valid_header(issuer, mint):
    validator = TokenValidator(issuer.issuer, AUDIENCE)
    claims = validate_bearer(f"Bearer {mint()}", validator=validator)
    assert claims.client_id == "orders-web"


def test_validate_bearer_uses_the_configured_validator(issuer, mint, default_validator):
    configure(ResourceServerSettings(issuer=issuer.issuer, audience=AUDIENCE))
    assert validate_bearer(f"bearer {mint()}").subject
    with pytest.raises(InvalidToken) as refused:
        validate_bearer(f"Bearer {mint(aud='https://inventory.example.com')}")
    assert refused.value.reason == "wrong_audience"


def test_validate_bearer_without_a_configured_validator_is_a_programming_error(default_validator):
    idp_resource_server.bearer._default_validator = None
    with pytest.raises(RuntimeError):
        validate_bearer("Bearer abc")


@pytest.mark.parametrize("header", [None, "", "Basic YWxpY2U6c2VjcmV0", "Token abc", "Bearerabc"])
def test_no_bearer_header_is_a_missing_token_with_no_error_code(header):
    with pytest.raises(TokenMissing) as missing:
        bearer_token(header)
    assert missing.value.status == 401
    assert missing.value.error is None


@pytest.mark.parametrize("header", ["Bearer", "Bearer ", "Bearer a b", "Bearer a,b", "Bearer \"abc\"", "Bearer é"])
def test_bearer_header_that_is_not_rfc_6750_syntax_is_an_invalid_token(header):
    with pytest.raises(InvalidToken) as refused:
        bearer_token(header)
    assert refused.value.reason == "malformed"


@pytest.mark.parametrize("header", ["Bearer abc.def.ghi", "bearer abc.def.ghi", "BEARER   abc.def.ghi ",
                                    "Bearer abc.def.ghi=="])
def test_bearer_token_reads_rfc_6750_syntax(header):
    assert bearer_token(header).startswith("abc.def.ghi")


def test_challenge_carries_no_quote_or_backslash_from_a_description():
    error = InvalidToken("malformed", 'bad "token" \\ here\n')
    assert www_authenticate(error, realm='o"rders') == (
        'Bearer realm="orders", error="invalid_token", error_description="bad token  here"')
    assert www_authenticate(None, realm="orders") == 'Bearer realm="orders"'
    assert www_authenticate(TokenMissing(), realm="orders") == 'Bearer realm="orders"'


def test_require_names_every_missing_role_and_scope():
    claims = Claims({"sub": "s", "client_id": "c", "roles": ["clerk"], "scope": "orders:read"})
    require(claims, roles=("clerk",), scopes=("orders:read",))
    with pytest.raises(InsufficientScope) as refused:
        require(claims, roles=("admin", "clerk"), scopes=("orders:write",))
    assert refused.value.status == 403
    assert refused.value.error == "insufficient_scope"
    assert refused.value.description == "This request needs the role admin, scope orders:write."


def test_settings_from_a_dict_accept_any_case_and_refuse_unknown_names():
    settings = ResourceServerSettings.from_dict({"issuer": "https://id.example.com", "AUDIENCE": AUDIENCE,
                                                 "Leeway": 10})
    assert settings.audience == (AUDIENCE,)
    assert settings.leeway == 10
    with pytest.raises(ValueError, match="colour"):
        ResourceServerSettings.from_dict({"issuer": "https://id.example.com", "audience": AUDIENCE, "colour": 1})
    with pytest.raises(ValueError):
        ResourceServerSettings(issuer="", audience=AUDIENCE)
