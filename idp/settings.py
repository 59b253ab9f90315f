"""Django settings for the IdP: every value that comes from the environment is read here, and only here."""

from __future__ import annotations

import ipaddress
import os
import secrets
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from idp.lifetimes import access_token_expires_in

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("IDP_VAR_DIR", BASE_DIR / "var"))


def _env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a whole number, not {value!r}.") from None


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- Issuer: the public base URL; everything host-related derives from it. -------------------------
IDP_ISSUER = os.environ.get("IDP_ISSUER", "http://127.0.0.1:8000").rstrip("/")
_issuer = urlsplit(IDP_ISSUER)
if _issuer.scheme not in {"http", "https"} or not _issuer.hostname:
    raise ImproperlyConfigured(
        f"IDP_ISSUER must be an absolute http(s) URL such as https://id.example.com, not {IDP_ISSUER!r}."
    )
if _issuer.query or _issuer.fragment:
    raise ImproperlyConfigured("IDP_ISSUER must not carry a query or fragment (OpenID Connect Discovery 1.0 §3).")
IDP_ISSUER_IS_LOOPBACK = _is_loopback(_issuer.hostname)
IDP_ISSUER_IS_HTTPS = _issuer.scheme == "https"


def _development_secret(env_name: str, filename: str, generate) -> str:
    """Return the secret from the environment, or (loopback issuer only) one generated once into var/."""
    value = os.environ.get(env_name, "").strip()
    if value:
        return value
    if not IDP_ISSUER_IS_LOOPBACK:
        raise ImproperlyConfigured(
            f"{env_name} is not set. The issuer {IDP_ISSUER} is not a loopback address, so the IdP will not "
            f"invent secrets for it: set {env_name} in the environment (see the table in README.md)."
        )
    path = VAR_DIR / "secrets" / filename
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    value = generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race; use its value
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    return value


SECRET_KEY = _development_secret("SECRET_KEY", "secret_key", lambda: secrets.token_urlsafe(50))
# Fernet key (32 url-safe base64 bytes) that encrypts signing keys at rest.
IDP_KEY_ENCRYPTION_KEY = _development_secret(
    "IDP_KEY_ENCRYPTION_KEY", "key_encryption_key", lambda: Fernet.generate_key().decode()
)
try:
    Fernet(IDP_KEY_ENCRYPTION_KEY)
except ValueError:
    raise ImproperlyConfigured(
        "IDP_KEY_ENCRYPTION_KEY must be a Fernet key (32 bytes, url-safe base64); create one with "
        '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`.'
    ) from None

DEBUG = _env_flag("DEBUG", False)

ALLOWED_HOSTS = [_issuer.hostname]
if IDP_ISSUER_IS_LOOPBACK:
    ALLOWED_HOSTS += ["127.0.0.1", "localhost", "[::1]"]
_issuer_origin = f"{_issuer.scheme}://{_issuer.netloc}"
CSRF_TRUSTED_ORIGINS = [_issuer_origin]

# --- Transport security. ------------------------------------------------------------------------
IDP_TRUST_PROXY = _env_flag("IDP_TRUST_PROXY", False)
# How many trusted proxies append to X-Forwarded-For; the client is that many entries from the right.
IDP_TRUSTED_PROXY_COUNT = max(1, _env_int("IDP_TRUSTED_PROXY_COUNT", 1))
if IDP_TRUST_PROXY:
    # Only behind a proxy that overwrites these headers; otherwise a client could claim https or a host.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    USE_X_FORWARDED_HOST = True
SESSION_COOKIE_SECURE = IDP_ISSUER_IS_HTTPS
CSRF_COOKIE_SECURE = IDP_ISSUER_IS_HTTPS
SECURE_SSL_REDIRECT = IDP_ISSUER_IS_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]  # load balancers probe over plain http
SECURE_HSTS_SECONDS = 31_536_000 if IDP_ISSUER_IS_HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = IDP_ISSUER_IS_HTTPS
SECURE_HSTS_PRELOAD = IDP_ISSUER_IS_HTTPS and _env_flag("IDP_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_NAME = "__Host-idp_session" if IDP_ISSUER_IS_HTTPS else "idp_session"
# Absolute session lifetime (Keycloak's "SSO Session Max" is 10 hours) and idle timeout ("SSO Session Idle", 30 min).
SESSION_COOKIE_AGE = _env_int("IDP_SESSION_MAX_AGE", 10 * 3600)
IDP_SESSION_IDLE_TIMEOUT = _env_int("IDP_SESSION_IDLE_TIMEOUT", 30 * 60)
SESSION_ENGINE = "django.contrib.sessions.backends.db"
CSRF_COOKIE_HTTPONLY = True
CSRF_COOKIE_SAMESITE = "Lax"

# --- Applications. ------------------------------------------------------------------------------
INSTALLED_APPS = [
    "idp.apps.IdpAdminConfig",  # Django's admin with the IdP's branded site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "oauth2_provider",
    "rest_framework",
    "audit",
    "accounts",
    "clients",
    "idp",
]

MIDDLEWARE = [
    "audit.middleware.RequestMetricsMiddleware",  # first: times the whole request
    "django.middleware.security.SecurityMiddleware",
    "idp.security_headers.SecurityHeadersMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "accounts.middleware.SessionActivityMiddleware",  # idle timeout and absolute lifetime of sessions
    "idp.access_audit.AccessDeniedAuditMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]
# The token, revocation, introspection and userinfo endpoints, as gunicorn serves them (idp/protocol_chain.py):
# their callers send credentials, never cookies, so the session, CSRF, authentication and messages middleware are
# left out. X-Frame-Options still comes from SecurityHeadersMiddleware.
PROTOCOL_MIDDLEWARE = [
    "audit.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "idp.security_headers.SecurityHeadersMiddleware",
    "django.middleware.common.CommonMiddleware",
    "idp.access_audit.AccessDeniedAuditMiddleware",
]

ROOT_URLCONF = "idp.urls"
WSGI_APPLICATION = "idp.wsgi.application"
ASGI_APPLICATION = "idp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Data. --------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip() or f"sqlite:///{VAR_DIR / 'idp.sqlite3'}"
if DATABASE_URL.startswith("sqlite:"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)
_database = dj_database_url.parse(DATABASE_URL)
if _database["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets gunicorn workers read while one writes; IMMEDIATE avoids lock-upgrade deadlocks.
    _database["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
else:
    # Persistent connections, checked before reuse: one connection per worker thread, no per-request connect. The
    # check looks at the socket instead of sending `SELECT 1` (idp/postgresql/base.py).
    if _database["ENGINE"] == "django.db.backends.postgresql":
        _database["ENGINE"] = "idp.postgresql"
    _database["CONN_MAX_AGE"] = _env_int("DATABASE_CONN_MAX_AGE", 600)
    _database["CONN_HEALTH_CHECKS"] = True
    # Parameters sent apart from the SQL (server-side binding), and each statement a connection has run
    # `prepare_threshold` times prepared once and then executed by name: no parameter is quoted into the SQL text in
    # Python, and PostgreSQL parses and plans a hot statement once per connection instead of once per request. About
    # a tenth less of the IdP's CPU per introspection, userinfo, refresh and code exchange (bench/README.md). Django
    # leaves prepared statements off by default, for PgBouncer in transaction mode before 1.21, which hands a
    # session's statements to other clients; DATABASE_PREPARED_STATEMENTS=0 does the same here.
    _database["OPTIONS"] = {
        **_database.get("OPTIONS", {}),
        "server_side_binding": True,
        "prepare_threshold": 5 if _env_flag("DATABASE_PREPARED_STATEMENTS", True) else None,
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = os.environ.get("REDIS_URL", "").strip()
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "idp"}}

# --- Users and passwords. -----------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.IdpAuthenticationBackend"]  # username or email; lockouts
# Argon2id first (see accounts/hashers.py for the parameters and why); the others only verify imported or
# older hashes, which Django re-hashes with Argon2id at the next successful login.
PASSWORD_HASHERS = [
    "accounts.hashers.IdpArgon2PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    # Client secrets only (selected by OAUTH2_PROVIDER["CLIENT_SECRET_HASHER"]); see clients/hashers.py.
    "clients.hashers.ClientSecretHasher",
]
# Password hashes one process computes at once; the rest wait their turn (accounts/hashers.py says why).
IDP_PASSWORD_HASH_CONCURRENCY = max(1, _env_int("IDP_PASSWORD_HASH_CONCURRENCY", 1))
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/account/"
LOGOUT_REDIRECT_URL = "/login/"
PASSWORD_RESET_TIMEOUT = _env_int("IDP_PASSWORD_RESET_TIMEOUT", 3600)  # Django's default is 3 days

# Brute-force protection (accounts/throttling.py). Failures are counted per (username, IP) and per IP; the wait
# after each failure past the threshold doubles from BASE up to MAX seconds, and counters reset after WINDOW.
IDP_LOGIN_USER_IP_FAILURE_LIMIT = _env_int("IDP_LOGIN_USER_IP_FAILURE_LIMIT", 5)
IDP_LOGIN_IP_FAILURE_LIMIT = _env_int("IDP_LOGIN_IP_FAILURE_LIMIT", 30)
IDP_LOGIN_LOCK_BASE_SECONDS = _env_int("IDP_LOGIN_LOCK_BASE_SECONDS", 30)
IDP_LOGIN_LOCK_MAX_SECONDS = _env_int("IDP_LOGIN_LOCK_MAX_SECONDS", 15 * 60)
IDP_LOGIN_FAILURE_WINDOW_SECONDS = _env_int("IDP_LOGIN_FAILURE_WINDOW_SECONDS", 3600)

# --- Email (password reset). The console backend unless an SMTP host is configured. ----------------------
EMAIL_HOST = os.environ.get("IDP_EMAIL_HOST", "").strip()
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = _env_int("IDP_EMAIL_PORT", 587)
    EMAIL_HOST_USER = os.environ.get("IDP_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = os.environ.get("IDP_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = _env_flag("IDP_EMAIL_USE_TLS", EMAIL_PORT == 587)
    EMAIL_USE_SSL = _env_flag("IDP_EMAIL_USE_SSL", EMAIL_PORT == 465)
    EMAIL_TIMEOUT = 10
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = os.environ.get("IDP_EMAIL_FROM", f"no-reply@{_issuer.hostname}")

# --- Internationalisation and static files. -----------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"message_only": {"format": "{message}", "style": "{"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler"},
        # Audit events: one JSON object per line on standard output, for central logging.
        "audit_stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "message_only",
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "oauth2_provider": {"level": "WARNING"},
        "audit.events": {"handlers": ["audit_stdout"], "level": "INFO", "propagate": False},
    },
}

# --- Audit (audit/). ------------------------------------------------------------------------------
# Keys the event hash chain; set it on its own to keep `audit verify` passing across a SECRET_KEY rotation.
IDP_AUDIT_CHAIN_KEY = os.environ.get("IDP_AUDIT_CHAIN_KEY", "").strip() or SECRET_KEY
# On PostgreSQL an event's own transaction commits without waiting for the WAL flush (audit/services.py says why);
# set this to make every event wait for the disk, at a cost on every token request.
IDP_AUDIT_DURABLE_COMMIT = _env_flag("IDP_AUDIT_DURABLE_COMMIT", False)
# Routine events (token issued or exchanged) are written by a background thread per process (audit/writer.py), in
# batches of up to IDP_AUDIT_BATCH_SIZE, at most IDP_AUDIT_BATCH_MS after the first was queued; 0 ms writes each
# before its response, as failures, alerts and administrative changes always are.
IDP_AUDIT_BATCH_SIZE = max(1, _env_int("IDP_AUDIT_BATCH_SIZE", 100))
IDP_AUDIT_BATCH_MS = max(0, _env_int("IDP_AUDIT_BATCH_MS", 50))
# Detector thresholds (audit/detectors.py): an alert is raised when a count in the window reaches its threshold,
# and at most once per window for the same account, IP or client.
IDP_ALERT_WINDOW_SECONDS = _env_int("IDP_ALERT_WINDOW_SECONDS", 600)
IDP_ALERT_BRUTE_FORCE_FAILURES = _env_int("IDP_ALERT_BRUTE_FORCE_FAILURES", 10)
IDP_ALERT_SPRAYING_ACCOUNTS = _env_int("IDP_ALERT_SPRAYING_ACCOUNTS", 10)
IDP_ALERT_STUFFING_IPS = _env_int("IDP_ALERT_STUFFING_IPS", 5)
IDP_ALERT_VALIDATION_FAILURES = _env_int("IDP_ALERT_VALIDATION_FAILURES", 20)
# /metrics: a bearer token from the environment, or (unset) loopback clients only.
IDP_METRICS_TOKEN = os.environ.get("IDP_METRICS_TOKEN", "").strip()

# --- First-party cookie token API (idp/api/) for the IdP's own single-page clients. -------------------
IDP_FIRST_PARTY_CLIENT_ID = os.environ.get("IDP_FIRST_PARTY_CLIENT_ID", "idp-web")
IDP_API_AUDIENCE = f"{IDP_ISSUER}/api"
IDP_ACCESS_COOKIE_NAME = "__Host-idp_access" if IDP_ISSUER_IS_HTTPS else "idp_access"
IDP_REFRESH_COOKIE_NAME = "__Secure-idp_refresh" if IDP_ISSUER_IS_HTTPS else "idp_refresh"
# Django REST framework: our access tokens only, deny unless authenticated, JSON only (the browsable API's pages
# would need inline scripts the CSP forbids). A view that must answer anonymously says so itself.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["idp.api_auth.IdpAccessTokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
}

# --- Token core: signing keys and token lifetimes. ------------------------------------------------
IDP_SIGNING_ALGORITHM = os.environ.get("IDP_SIGNING_ALGORITHM", "RS256")
if IDP_SIGNING_ALGORITHM not in {"RS256", "ES256"}:
    raise ImproperlyConfigured("IDP_SIGNING_ALGORITHM must be RS256 or ES256 (RFC 9068 forbids none and HS*).")
IDP_RSA_KEY_BITS = _env_int("IDP_RSA_KEY_BITS", 2048)
if IDP_RSA_KEY_BITS < 2048:
    raise ImproperlyConfigured("IDP_RSA_KEY_BITS must be at least 2048 (RFC 7518 §3.3).")
IDP_KEY_ROTATION_DAYS = _env_int("IDP_KEY_ROTATION_DAYS", 90)  # system check warns past this age
IDP_KEY_CACHE_SECONDS = _env_int("IDP_KEY_CACHE_SECONDS", 5)  # how often a process re-reads the key set
IDP_JWKS_MAX_AGE = _env_int("IDP_JWKS_MAX_AGE", 300)  # Cache-Control max-age of the JWKS document
# Upper bound on any client's access-token lifetime; RFC 9700 §4.14 and RFC 9068 favour short-lived tokens.
IDP_ACCESS_TOKEN_MAX_LIFETIME = _env_int("IDP_ACCESS_TOKEN_MAX_LIFETIME", 3600)
IDP_ID_TOKEN_LIFETIME = _env_int("IDP_ID_TOKEN_LIFETIME", 300)
IDP_TOKEN_EXCHANGE_LIFETIME = _env_int("IDP_TOKEN_EXCHANGE_LIFETIME", 300)  # RFC 8693 exchanged tokens
IDP_CLOCK_LEEWAY = 30  # seconds of clock skew tolerated when reading our own JWTs

# --- OAuth 2.0 / OpenID Connect (django-oauth-toolkit). Every security option is set here on purpose. ----
OAUTH2_PROVIDER_APPLICATION_MODEL = "clients.Client"
OAUTH2_PROVIDER = {
    "OIDC_ENABLED": True,
    "OIDC_ISS_ENDPOINT": IDP_ISSUER,
    "OIDC_RP_INITIATED_LOGOUT_ENABLED": True,
    "OIDC_RP_INITIATED_LOGOUT_ALWAYS_PROMPT": True,
    "OIDC_RP_INITIATED_LOGOUT_STRICT_REDIRECT_URIS": True,  # post_logout_redirect_uri must be registered
    "OIDC_RP_INITIATED_LOGOUT_ACCEPT_EXPIRED_TOKENS": True,  # an expired id_token_hint still names the session
    "OIDC_RP_INITIATED_LOGOUT_DELETE_TOKENS": True,
    "OIDC_RESPONSE_TYPES_SUPPORTED": ["code"],  # no implicit or hybrid flows (RFC 9700 §2.1.2)
    "OIDC_SERVER_CLASS": "idp.server.IdpServer",  # no password, implicit, hybrid or device grants
    "OAUTH2_VALIDATOR_CLASS": "idp.validator.IdpOAuth2Validator",
    "OAUTH2_BACKEND_CLASS": "idp.backend.IdpOAuthLibCore",
    "ACCESS_TOKEN_GENERATOR": "idp.tokens.signed_access_token",
    # Without this DOT would reuse the JWT generator for refresh tokens; they must stay opaque.
    "REFRESH_TOKEN_GENERATOR": "idp.tokens.opaque_refresh_token",
    "SCOPES_BACKEND_CLASS": "idp.scopes.ClientScopes",
    "APPLICATION_ADMIN_CLASS": "clients.admin.ClientAdmin",  # DOT registers our client admin for its model
    # ... and audited versions of its token admins (idp/token_admin.py).
    "ACCESS_TOKEN_ADMIN_CLASS": "idp.token_admin.AccessTokenAdmin",
    "REFRESH_TOKEN_ADMIN_CLASS": "idp.token_admin.RefreshTokenAdmin",
    "GRANT_ADMIN_CLASS": "idp.token_admin.GrantAdmin",
    "ID_TOKEN_ADMIN_CLASS": "idp.token_admin.IDTokenAdmin",
    "SCOPES": {
        "openid": "Sign you in",
        "profile": "See your name and username",
        "email": "See your email address",
        "roles": "See the roles you hold",
    },
    "DEFAULT_SCOPES": ["openid"],
    # Client secrets are 256-bit random values: a keyed SHA-256 suffices (clients/hashers.py explains why).
    "CLIENT_SECRET_HASHER": "client_secret_hmac_sha256",
    # Rows are pruned by `manage.py tokens prune`; per-client refresh lifetimes are enforced at validation.
    "REFRESH_TOKEN_EXPIRE_SECONDS": 90 * 24 * 3600,
    # RFC 9700 (OAuth 2.0 Security BCP): adopt every compliant behaviour DOT offers.
    "COMPLIANT_BCP_RFC9700_IMPLICIT_GRANT": True,  # §2.1.2: no implicit grant
    "COMPLIANT_BCP_RFC9700_PASSWORD_GRANT": True,  # §2.4: no resource owner password grant
    "COMPLIANT_BCP_RFC9700_PKCE_METHOD": True,  # §2.1.1: S256 only, never plain
    "COMPLIANT_BCP_RFC9700_ACCESS_TOKEN_TRANSPORT": True,  # §4.3.2: no tokens in query strings
    "COMPLIANT_BCP_RFC9700_AUTHZ_RESPONSE_ISS": True,  # §4.4 / RFC 9207: `iss` in authorization responses
    "COMPLIANT_BCP_RFC9700_TOKEN_STORAGE": True,  # §4: tokens stored only as SHA-256 checksums
    "COMPLIANT_BCP_RFC9700_REFRESH_TOKEN": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_SCHEME": True,
    "COMPLIANT_BCP_RFC9700_REDIRECT_URI_MATCHING": True,
    "COMPLIANT_BCP_RFC9700_PKCE_REQUIRED": True,
    "PKCE_REQUIRED": True,  # RFC 9700 §2.1.1: PKCE for every client, confidential ones included
    # https only; a client's loopback http redirect URIs (RFC 8252 §7.3) are allowed by the client model.
    # DOT applies it to its own redirect after RP-initiated logout without a post_logout_redirect_uri (to the
    # IdP's "/"), so an http issuer (loopback development) must allow http for that one redirect to work.
    "ALLOWED_REDIRECT_URI_SCHEMES": ["https"] if IDP_ISSUER_IS_HTTPS else ["https", "http"],
    "ALLOW_URI_WILDCARDS": False,
    "REFRESH_TOKEN_REUSE_PROTECTION": True,  # RFC 9700 §4.14.2: reuse revokes the whole family
    "ROTATE_REFRESH_TOKEN": True,
    "REFRESH_TOKEN_GRACE_PERIOD_SECONDS": 0,
    "AUTHORIZATION_CODE_EXPIRE_SECONDS": 60,  # RFC 6749 §4.1.2: short-lived codes (10 minutes at most)
    "ACCESS_TOKEN_EXPIRE_SECONDS": 300,  # DOT's default is 10 hours
    "ID_TOKEN_EXPIRE_SECONDS": IDP_ID_TOKEN_LIFETIME,
    # oauthlib asks this callable for each token's lifetime: the client's own, capped (idp/lifetimes.py).
    "EXTRA_SERVER_KWARGS": {"token_expires_in": access_token_expires_in},
    "REQUEST_APPROVAL_PROMPT": "auto",
}
