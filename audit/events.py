"""Stable names of every audit event type and outcome: operators alert on these, so they never change."""

# Outcomes.
SUCCESS = "success"
FAILURE = "failure"
ALERT = "alert"
OUTCOMES = (SUCCESS, FAILURE, ALERT)

# Browser and API sign-in (accounts). A failed login's reason is one of LOGIN_FAILURE_REASONS; it is stored, never
# shown to the person signing in.
LOGIN_SUCCEEDED = "login.succeeded"
LOGIN_FAILED = "login.failed"
LOGIN_FAILURE_REASONS = ("unknown_user", "bad_password", "locked", "inactive")
LOCKOUT_SET = "lockout.set"
LOCKOUT_CLEARED = "lockout.cleared"
LOGOUT = "logout"
SESSION_REVOKED = "session.revoked"
PASSWORD_CHANGED = "password.changed"
PASSWORD_RESET_REQUESTED = "password.reset_requested"
PASSWORD_RESET = "password.reset"
CONSENT_GRANTED = "consent.granted"
CONSENT_DENIED = "consent.denied"
CONSENT_REVOKED = "consent.revoked"

# Tokens (idp). TOKEN_FAILED reasons: invalid_client, code_replay, invalid_pkce, redirect_mismatch,
# unsupported_grant_type, invalid_grant, invalid_scope, invalid_target, invalid_request.
TOKEN_ISSUED = "token.issued"
TOKEN_FAILED = "token.failed"
TOKEN_FAILURE_REASONS = (
    "invalid_client", "code_replay", "invalid_pkce", "redirect_mismatch", "unsupported_grant_type",
    "invalid_grant", "invalid_scope", "invalid_target", "invalid_request", "unauthorized_client",
)
TOKEN_REFRESH_REUSED = "token.refresh_reused"
TOKEN_REVOKED = "token.revoked"
TOKEN_EXCHANGED = "token.exchanged"
# A bearer token refused at userinfo, introspection or an IdP API. Reasons: bad_signature, expired,
# wrong_issuer, wrong_audience, wrong_type, revoked, malformed.
TOKEN_REJECTED = "token.rejected"
TOKEN_REJECTED_REASONS = (
    "bad_signature", "expired", "wrong_issuer", "wrong_audience", "wrong_type", "revoked", "malformed",
)
ACCESS_DENIED = "access.denied"

# Administration (any app).
ADMIN_CHANGE = "admin.change"
KEY_ROTATED = "key.rotated"
CLIENT_CREATED = "client.created"
CLIENT_SECRET_ROTATED = "client.secret_rotated"
CLIENT_DISABLED = "client.disabled"
CLIENT_EXCHANGE_ALLOWED = "client.exchange_allowed"
CLIENT_EXCHANGE_REVOKED = "client.exchange_revoked"
USER_SIGNED_OUT_EVERYWHERE = "user.signed_out_everywhere"
USER_LOCKED = "user.locked"
USER_UNLOCKED = "user.unlocked"
AUDIT_PRUNED = "audit.pruned"

# Detectors (audit.detectors): raised once per window, never once per failure.
ALERT_BRUTE_FORCE = "alert.brute_force"
ALERT_PASSWORD_SPRAYING = "alert.password_spraying"
ALERT_CREDENTIAL_STUFFING = "alert.credential_stuffing"
ALERT_REFRESH_TOKEN_REUSE = "alert.refresh_token_reuse"
ALERT_TOKEN_VALIDATION_BURST = "alert.token_validation_burst"
