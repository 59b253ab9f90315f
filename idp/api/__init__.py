"""The first-party cookie token API: sign-in, refresh and sign-out for the IdP's own single-page clients, and /api/me.

The tokens are the token core's own RFC 9068 JWTs and opaque rotating refresh tokens, minted, stored and rotated by
django-oauth-toolkit exactly as at /o/token/; only the transport differs: HttpOnly, SameSite=Strict cookies.
"""
