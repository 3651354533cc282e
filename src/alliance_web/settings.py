"""Django settings for Alliance, read from the environment.

Defaults give a working single-machine install: SQLite in the data folder, secrets generated
into a git-ignored file there on first run, email printed to the console. Production is
switched on with ``ALLIANCE_PRODUCTION=True``, which then also needs ``ALLIANCE_SECRET_KEY``
(or ``ALLIANCE_SECRET_KEY_FILE``), ``ALLIANCE_ALLOWED_HOSTS`` and ``ALLIANCE_FIELD_KEYS`` and
turns on every transport-security setting (see docs/deployment.md).
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
import django
from django.core.exceptions import ImproperlyConfigured

from alliance_web.env import envbool, envint, envlist, envsecret, envstr

DJANGO_6 = django.VERSION >= (6, 0)

# --- where things live ---------------------------------------------------------------------
_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parents[1]
PROJECT_DIR = _CHECKOUT if (_CHECKOUT / "pyproject.toml").exists() else Path.cwd()
DATA_DIR = Path(envstr("ALLIANCE_DATA_DIR") or PROJECT_DIR / "data").resolve()

PRODUCTION = envbool("ALLIANCE_PRODUCTION", False)
DEBUG = envbool("ALLIANCE_DEBUG", False)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("ALLIANCE_DEBUG cannot be True when ALLIANCE_PRODUCTION is True")


def _local_secrets() -> dict[str, str]:
    """Secrets for a development or demo install, generated once into DATA_DIR/secrets.json."""
    path = DATA_DIR / "secrets.json"
    if path.exists():
        data: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))
        return data
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    data = {
        "secret_key": secrets.token_urlsafe(50),
        "field_keys": "k1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    }
    path.touch(mode=0o600)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return data


_secret_key = envsecret("ALLIANCE_SECRET_KEY")
_field_keys = envsecret("ALLIANCE_FIELD_KEYS")
if PRODUCTION:
    missing = [
        name
        for name, value in (
            ("ALLIANCE_SECRET_KEY", _secret_key),
            ("ALLIANCE_FIELD_KEYS", _field_keys),
        )
        if not value
    ]
    if missing:
        raise ImproperlyConfigured(
            f"Production needs {' and '.join(missing)} (or the matching *_FILE); "
            "generate a field key with: alliance manage rotate_field_key --generate"
        )
else:
    _local = _local_secrets() if not (_secret_key and _field_keys) else {}
    _secret_key = _secret_key or _local["secret_key"]
    _field_keys = _field_keys or _local["field_keys"]

SECRET_KEY: str = _secret_key or ""
# "kid:key,kid:key" — the first key encrypts, all of them decrypt (rotation).
FIELD_ENCRYPTION_KEYS: str = _field_keys or ""

ALLOWED_HOSTS = envlist(
    "ALLIANCE_ALLOWED_HOSTS",
    [] if PRODUCTION else ["127.0.0.1", "localhost", "testserver", "[::1]"],
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured(
        "Production needs ALLIANCE_ALLOWED_HOSTS (comma-separated host names)"
    )
CSRF_TRUSTED_ORIGINS = envlist("ALLIANCE_CSRF_TRUSTED_ORIGINS", [])

# --- applications ----------------------------------------------------------------------------
INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_tasks_db",
    "alliance_web.accounts",
    "alliance_web.audit",
    "alliance_web.care",
    "alliance_web.portal",
    "alliance_web.workspace",
    "alliance_web.api",
]
if not DJANGO_6:
    INSTALLED_APPS.insert(INSTALLED_APPS.index("django_tasks_db"), "django_tasks")

MIDDLEWARE = [
    "alliance_web.audit.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "alliance_web.audit.middleware.JsonDepthMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "alliance_web.accounts.middleware.SessionPolicyMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "alliance_web.audit.middleware.NoStoreMiddleware",
    "axes.middleware.AxesMiddleware",
]
if DJANGO_6:
    MIDDLEWARE.insert(2, "django.middleware.csp.ContentSecurityPolicyMiddleware")
else:
    MIDDLEWARE.insert(2, "csp.middleware.CSPMiddleware")
    INSTALLED_APPS.append("csp")

ROOT_URLCONF = "alliance_web.urls"
WSGI_APPLICATION = "alliance_web.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/accounts/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [_PACKAGE / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "alliance_web.accounts.context.navigation",
            ]
            + (["django.template.context_processors.csp"] if DJANGO_6 else []),
        },
    }
]

# --- database --------------------------------------------------------------------------------
_database_url = envstr("DATABASE_URL")
if _database_url:
    DATABASES = {
        "default": dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    }
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "alliance.sqlite3",
            "OPTIONS": {
                # WAL lets readers and one writer work at once; IMMEDIATE takes the write lock
                # at BEGIN so two writers queue on busy_timeout instead of failing mid-transaction.
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
            },
            "TEST": {"NAME": envstr("ALLIANCE_TEST_SQLITE")},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- background work (Django's tasks framework, database-backed queue) -----------------------
TASKS = {
    "default": {
        "BACKEND": envstr("ALLIANCE_TASK_BACKEND") or "django_tasks_db.DatabaseBackend",
    }
}
if TASKS["default"]["BACKEND"] == "django_tasks_rq.RQBackend":
    # Larger installs: Redis through django-tasks-rq (docs/background.md).
    INSTALLED_APPS += ["django_rq", "django_tasks_rq"]
    TASKS["default"]["QUEUES"] = ["default"]
    RQ_QUEUES = {"default": {"URL": envstr("ALLIANCE_REDIS_URL", "redis://127.0.0.1:6379/0")}}
# How long a worker's claim on a message lasts before another worker may send it (docs/background.md).
ALLIANCE_DELIVERY_LEASE_SECONDS = envint("ALLIANCE_DELIVERY_LEASE_SECONDS", 600)
ALLIANCE_MISSED_CHECKINS_IN_A_ROW = envint("ALLIANCE_MISSED_CHECKINS_IN_A_ROW", 2)
ALLIANCE_RECALIBRATION_MIN_CLIENTS = envint("ALLIANCE_RECALIBRATION_MIN_CLIENTS", 30)

# --- authentication and sessions (SECURITY.md REQ-AN1, REQ-SE1) -------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": 10},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "alliance_web.accounts.validators.MaximumLengthValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = envint("ALLIANCE_LOGIN_FAILURE_LIMIT", 5)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_VERBOSE = False

# Database sessions; malformed ids from tampered cookies are no session (not a database error).
SESSION_ENGINE = "alliance_web.accounts.session_store"
SESSION_COOKIE_AGE = 12 * 60 * 60  # absolute limit, REQ-SE1
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = True
# A failed check on a client check-in keeps what was typed and says what to do (portal); elsewhere
# Django's own page.
CSRF_FAILURE_VIEW = "alliance_web.portal.views.csrf_failure"
ALLIANCE_IDLE_TIMEOUT = timedelta(minutes=envint("ALLIANCE_IDLE_MINUTES", 30))
ALLIANCE_ADMIN_IDLE_TIMEOUT = timedelta(minutes=envint("ALLIANCE_ADMIN_IDLE_MINUTES", 15))
# Demo accounts may skip two-factor sign-in only when `alliance demo --demo-insecure-login` says so.
ALLIANCE_DEMO_INSECURE_LOGIN = envbool("ALLIANCE_DEMO_INSECURE_LOGIN", False)
# Exports of client data per user per hour (ASVS 2.4.1, alliance_web.audit.ratelimit); 0 = no limit.
# A heuristic: no standard gives a number.
ALLIANCE_EXPORT_LIMIT_PER_HOUR = envint("ALLIANCE_EXPORT_LIMIT_PER_HOUR", 60)
OTP_TOTP_ISSUER = "Alliance"
OTP_TOTP_THROTTLE_FACTOR = 1

# --- transport and headers ---------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = envbool("ALLIANCE_SSL_REDIRECT", True)
    SECURE_PROXY_SSL_HEADER = (
        ("HTTP_X_FORWARDED_PROTO", "https") if envbool("ALLIANCE_BEHIND_PROXY", True) else None
    )
    SECURE_HSTS_SECONDS = 63072000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "frame-ancestors": ["'none'"],
    "form-action": ["'self'"],
}
if DJANGO_6:
    SECURE_CSP = _CSP
else:
    CONTENT_SECURITY_POLICY = {"DIRECTIVES": _CSP}

# --- static files, email, locale ----------------------------------------------------------------
STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
# The shared CSS, JS and icons live beside the project package, which is not an app itself.
STATICFILES_DIRS = [_PACKAGE / "static"]
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not PRODUCTION

_mail_backend = envstr("ALLIANCE_EMAIL_BACKEND") or (
    "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "alliance_web.care.channels.OutboxEmailBackend"
)
if _mail_backend.endswith("smtp.EmailBackend"):
    _mail_options: dict[str, object] = {
        "host": envstr("ALLIANCE_EMAIL_HOST", "localhost"),
        "port": envint("ALLIANCE_EMAIL_PORT", 25),
        "use_tls": envbool("ALLIANCE_EMAIL_TLS", False),
        "username": envstr("ALLIANCE_EMAIL_USER", "") or "",
        "password": envsecret("ALLIANCE_EMAIL_PASSWORD") or "",
    }
elif _mail_backend.endswith(("filebased.EmailBackend", "OutboxEmailBackend")):
    _mail_options = {"file_path": str(DATA_DIR / "outbox" / "email")}
else:
    _mail_options = {}
if django.VERSION >= (6, 1):
    MAILERS = {"default": {"BACKEND": _mail_backend, "OPTIONS": _mail_options}}
else:  # Django 5.2 LTS reads the EMAIL_* settings
    EMAIL_BACKEND = _mail_backend
    EMAIL_FILE_PATH = DATA_DIR / "outbox" / "email"
    EMAIL_HOST = str(_mail_options.get("host", "localhost"))
    EMAIL_PORT = int(str(_mail_options.get("port", 25)))
    EMAIL_USE_TLS = bool(_mail_options.get("use_tls", False))
DEFAULT_FROM_EMAIL = envstr("ALLIANCE_FROM_EMAIL", "Alliance <no-reply@localhost>")
ALLIANCE_SMS_SENDER = envstr("ALLIANCE_SMS_SENDER", "alliance_web.care.channels.FileSmsSender")
ALLIANCE_BASE_URL = envstr("ALLIANCE_BASE_URL", "http://127.0.0.1:8000")

LANGUAGE_CODE = "en"
TIME_ZONE = envstr("ALLIANCE_TIME_ZONE", "America/Toronto")
USE_I18N = True
USE_TZ = True

DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- REST API ---------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "alliance_web.api.auth.BearerTokenAuthentication",
        # Like DRF's SessionAuthentication, but only for sessions that passed two-factor sign-in.
        "alliance_web.accounts.drf.VerifiedSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Alliance API",
    "DESCRIPTION": "Clients, episodes, sessions, administrations, scores, goals and alerts of one practice.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the drf-spectacular-sidecar package: nothing from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- logging: no PHI, no tokens (REQ ASVS 16.2.5) ---------------------------------------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "alliance_web.audit.context.RequestIdFilter"},
        "redact": {"()": "alliance_web.audit.context.RedactFilter"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"}
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id", "redact"],
        }
    },
    "root": {"handlers": ["console"], "level": envstr("ALLIANCE_LOG_LEVEL", "INFO")},
    "loggers": {
        # The dev server logs request paths; check-in tokens live in paths, so keep it quiet.
        "django.server": {"level": "WARNING"},
        "django.request": {"level": "ERROR"},
        # django-axes logs every sign-in at INFO (usernames masked); failures are in the audit trail.
        "axes": {"level": "WARNING"},
    },
}
