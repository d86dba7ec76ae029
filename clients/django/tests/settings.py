"""Settings for the package's tests: the service at SESSION_SERVICE_URL (make dev)."""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "session-service-client-tests")
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "sessions_tests",
]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}}
USE_TZ = True
SESSION_ENGINE = "session_service.session"
SESSION_SERVICE_URL = os.environ.get("SESSION_SERVICE_URL", "http://127.0.0.1:9")
SESSION_SERVICE_AUTH = "NONE"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
