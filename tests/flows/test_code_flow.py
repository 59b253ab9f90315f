"""The authorization-code flow with PKCE, end to end over HTTP, driven by authlib and verified by PyJWT."""

import jwt
import pytest

from tests.flows.conftest import REDIRECT_URI, authorize

pytestmark = pytest.mark.django_db(transaction=True)


def test_code_flow_yields_rfc9068_access_token_and_id_token(browser, discovery, rp, jwks_client, idp):
    response, oauth, state = authorize(browser, discovery, rp)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI)
    token = oauth.fetch_token(discovery["token_endpoint"], authorization_response=location,
                              code_verifier="v" * 64)
    access = token["access_token"]
    header = jwt.get_unverified_header(access)
    assert header["typ"] == "at+jwt"
    key = jwks_client.get_signing_key_from_jwt(access)
    claims = jwt.decode(access, key.key, algorithms=["RS256"], audience="https://orders.example.com", issuer=idp)
    print(claims)
    id_claims = jwt.decode(token["id_token"], jwks_client.get_signing_key_from_jwt(token["id_token"]).key,
                           algorithms=["RS256"], audience=rp.client.client_id, issuer=idp)
    print(id_claims)
    print(token)
