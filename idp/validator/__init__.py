"""The OAuth2Validator that oauthlib consults (settings OAUTH2_VALIDATOR_CLASS), and the lean statements it runs."""

from idp.validator.oauth2 import IdpOAuth2Validator

__all__ = ["IdpOAuth2Validator"]
