"""`SESSION_ENGINE = "session_service.session"`: Django's sessions kept by the session
service, every method one call to its API."""

from __future__ import annotations

import copy
import datetime
import logging
import threading
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings as django_settings
from django.contrib.auth import SESSION_KEY as AUTH_USER_KEY
from django.contrib.sessions.backends.base import SessionBase, UpdateError
from django.utils import timezone
from django.utils.crypto import get_random_string

from .client import Answer, Client, ServiceError, Settings, key_path
from .merge import Conflict, merge

logger = logging.getLogger("session_service")

#: The API's key: 32 characters of a-z and 0-9, as Django's own keys are. Any other
#: cookie value names no session, so it is not sent (a service test pins this).
KEY_LENGTH = 32
KEY_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
#: The API's largest ttl_seconds, ten years (a service test pins it).
MAX_TTL_SECONDS = 315_360_000
#: Saves and cycles that lose a race are merged and tried again this many times.
MERGE_ATTEMPTS = 5
#: How far the service's default expiry may be from Django's before a warning.
EXPIRY_SLACK_SECONDS = 60

_client: Client | None = None
_client_lock = threading.Lock()


def client() -> Client:
    """The process's one client (and connection pool), built on first use."""
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                _client = Client(Settings.from_django(django_settings))
    return _client


def valid_key(key: str | None) -> bool:
    return isinstance(key, str) and len(key) == KEY_LENGTH and set(key) <= set(KEY_ALPHABET)


class Codec:
    """Which codec the service runs, learned from its ETags (`"3"` for json,
    `"3.9f2c0a41d5e7"` for django; a service test pins this): under the django codec
    the service reads Django's own `_session_expiry` from the data, so no ttl_seconds is
    sent. The same for every thread of the process, and set only to one value."""

    known: str | None = None
    warned = False

    @classmethod
    def learn(cls, etag: str) -> None:
        cls.known = "django" if "." in etag else "json"


class SessionStore(SessionBase):
    def __init__(self, session_key: str | None = None):
        super().__init__(session_key)
        self._forget()

    def _forget(self) -> None:
        self._etag: str | None = None
        self._loaded: dict = {}
        self._stored_principal: str | None = None

    def _remember(self, answer: Answer) -> dict:
        """Keeps a session the service answered with; an answer without its data or its
        tag is an error, never an empty session."""
        doc = answer.body
        data = doc.get("data") if isinstance(doc, dict) else None
        if not isinstance(data, dict) or not answer.etag:
            raise ServiceError(f"the service answered {answer.status} without a session")
        self._etag = answer.etag
        Codec.learn(answer.etag)
        self._loaded = copy.deepcopy(data)
        principal = doc.get("principal")
        self._stored_principal = principal if isinstance(principal, str) else None
        return data

    @staticmethod
    def _new_key(answer: Answer) -> str:
        key = answer.body.get("session_key") if isinstance(answer.body, dict) else None
        if not valid_key(key):
            raise ServiceError("the service's answer names no valid session key")
        return key

    # Reads.

    def load(self) -> dict:
        answer = self._get(self.session_key)
        if answer is None:
            self._session_key = None
            self._forget()
            return {}
        return self._remember(answer)

    def _get(self, key: str | None) -> Answer | None:
        if not valid_key(key):
            return None
        answer = client().request("GET", key_path(key), repeatable=True)
        if answer.status == 200:
            return answer
        if answer.status == 404:
            return None
        raise ServiceError(f"GET a session: the service answered {answer.status}")

    def exists(self, session_key: str | None) -> bool:
        if not valid_key(session_key):
            return False
        answer = client().request("HEAD", key_path(session_key), repeatable=True)
        if answer.status in (200, 404):
            return answer.status == 200
        raise ServiceError(f"HEAD a session: the service answered {answer.status}")

    # Writes.

    def create(self) -> None:
        self._post(self._get_session(no_load=True))
        self.modified = True

    def save(self, must_create: bool = False) -> None:
        if self.session_key is None or must_create:
            return self.create()
        data = self._get_session(no_load=False)
        if self.session_key is None:
            # The load found nothing: what this request holds becomes a new session.
            return self.create()
        self._put(data)

    def _post(self, data: dict) -> None:
        age = self._age(data)
        if age <= 0:
            # Saved already expired, the session is gone at once, as a past expiry date
            # is for Django's database backend: a key that names nothing, no request.
            self._session_key = get_random_string(KEY_LENGTH, KEY_ALPHABET)
            self._forget()
            return
        codec_known = Codec.known is not None
        body = {"data": data, **self._expiry_fields(age), **self._principal_field(data, None)}
        answer = client().request("POST", "/sessions", body=body, repeatable=False)
        if answer.status != 201:
            raise ServiceError(f"POST a session: the service answered {answer.status}")
        self._remember(answer)
        self._session_key = self._new_key(answer)
        if not codec_known and self._expiry_fields(age):
            # The first create of the process did not yet know it should send the
            # expiry: set it now, on the version just created.
            self._put(data)
        elif "_session_expiry" not in data:
            self._check_default_expiry(answer, age)

    def _put(self, data: dict) -> None:
        for _ in range(MERGE_ATTEMPTS):
            age = self._age(data)
            if age <= 0:
                self.delete(self.session_key)
                return
            body = {"data": data, **self._expiry_fields(age)}
            body.update(self._principal_field(data, self._stored_principal))
            headers = {"If-Match": self._etag} if self._etag else {}
            answer = client().request(
                "PUT", key_path(self.session_key), body=body, headers=headers,
                repeatable=bool(self._etag),
            )
            if answer.status == 200:
                self._remember(answer)
                return
            if answer.status == 404:
                raise UpdateError()
            if answer.status != 412:
                raise ServiceError(f"PUT a session: the service answered {answer.status}")
            data = self._merge_current(data)
            if data is None:
                # Gone meanwhile (a logout): never brought back.
                raise UpdateError()
        raise UpdateError()

    def _merge_current(self, data: dict) -> dict | None:
        """After a 412: the service's version merged with ours against what we loaded,
        which then becomes what we loaded; None when the session is gone. A key both
        sides changed is Django's UpdateError."""
        current = self._get(self.session_key)
        if current is None:
            return None
        base = self._loaded
        theirs = self._remember(current)
        try:
            merged = merge(base, data, theirs)
        except Conflict as conflict:
            raise UpdateError() from conflict
        self._session_cache = merged
        return merged

    def delete(self, session_key: str | None = None) -> None:
        key = self.session_key if session_key is None else session_key
        if key is None:
            return
        if valid_key(key):
            answer = client().request("DELETE", key_path(key), repeatable=True)
            if answer.status not in (204, 404):
                raise ServiceError(f"DELETE a session: the service answered {answer.status}")
        if key == self.session_key:
            self._forget()

    def cycle_key(self) -> None:
        """The API's atomic cycle, conditional on the version this request loaded: the
        data moves to a new key and the old key is gone in one step. A version saved
        meanwhile is merged first, so the next save loses nothing; unsaved changes stay
        in this object and go with that save."""
        data = self._session
        if not valid_key(self.session_key) or not self._etag:
            return super().cycle_key()
        for _ in range(MERGE_ATTEMPTS):
            answer = client().request(
                "POST", key_path(self.session_key) + "/cycle",
                headers={"If-Match": self._etag}, repeatable=False,
            )
            if answer.status == 200:
                self._remember(answer)
                self._session_key = self._new_key(answer)
                self._session_cache = data
                self.modified = True
                return
            if answer.status not in (404, 412):
                raise ServiceError(f"cycle a session: the service answered {answer.status}")
            data = None if answer.status == 404 else self._merge_current(data)
            if data is None:
                # Deleted meanwhile (a logout, a revocation): start afresh, never with
                # the old data.
                self._session_key = None
                self._session_cache = {}
                self._forget()
                self.modified = True
                return
        raise UpdateError()

    async def acycle_key(self) -> None:
        await self._aget_session()
        await sync_to_async(self.cycle_key)()

    @classmethod
    def clear_expired(cls) -> None:
        """Nothing to do: the service expires sessions itself (TTL and its cleanup)."""

    # The API's fields.

    def _age(self, data: dict) -> int:
        return self.get_expiry_age(expiry=data.get("_session_expiry"))

    @staticmethod
    def _expiry_fields(age: int) -> dict[str, Any]:
        if Codec.known != "json":
            return {}
        return {"ttl_seconds": max(1, min(age, MAX_TTL_SECONDS))}

    @staticmethod
    def _check_default_expiry(answer: Answer, age: int) -> None:
        """Under the django codec the service's default expiry stands for
        SESSION_COOKIE_AGE: say so once when the two differ."""
        if Codec.known != "django" or Codec.warned:
            return
        expires = answer.body.get("expires_at")
        if not isinstance(expires, str):
            return
        left = datetime.datetime.fromisoformat(expires.replace("Z", "+00:00")) - timezone.now()
        if abs(left.total_seconds() - age) > EXPIRY_SLACK_SECONDS:
            Codec.warned = True
            logger.warning(
                "the service expires a new session in %d s, SESSION_COOKIE_AGE is %d s: "
                "set the service's SESSION_IDLE_TTL_SECONDS to SESSION_COOKIE_AGE",
                left.total_seconds(), age,
            )

    @staticmethod
    def _principal_field(data: dict, stored: str | None) -> dict[str, Any]:
        if not client().settings.principals:
            return {}
        user = data.get(AUTH_USER_KEY)
        wanted = None if user is None else str(user)
        return {} if wanted == stored else {"principal": wanted}
