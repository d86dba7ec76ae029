"""A user's sessions through the API: the list for a "your devices" page, and log-out
everywhere. The principal is what Django's login stores as `_auth_user_id`."""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote, urlencode

from .client import ServiceError
from .session import client, valid_key

#: A log-out everywhere that the deadline cuts short (202) is continued this many times.
REVOKE_CALLS = 20


def principal_of(user) -> str:
    return user._meta.pk.value_to_string(user)


def session_handle(session_key: str) -> str:
    """How a listing names a session: the first 16 hex digits of its key's SHA-256, so
    a page can mark the current one without the list ever carrying keys."""
    return hashlib.sha256(session_key.encode()).hexdigest()[:16]


def _path(user, suffix: str = "", **query: Any) -> str:
    path = "/principals/" + quote(principal_of(user), safe="") + "/sessions" + suffix
    query = {k: v for k, v in query.items() if v is not None}
    return path + ("?" + urlencode(query) if query else "")


def list_sessions(user, limit: int = 50, cursor: str | None = None) -> dict:
    """One page of the user's live sessions, newest first: `{"sessions": [{"id",
    "created_at", "expires_at"}], "next"}`; pass `next` as `cursor` for the next page."""
    answer = client().request("GET", _path(user, limit=limit, cursor=cursor), repeatable=True)
    body = answer.body
    if answer.status != 200 or not isinstance(body, dict) or not isinstance(body.get("sessions"), list):
        raise ServiceError(f"list a user's sessions: the service answered {answer.status}")
    return body


def revoke_session(user, handle: str) -> bool:
    """Ends one of the user's sessions by its handle; False when it was not theirs."""
    answer = client().request(
        "DELETE", _path(user, "/" + quote(handle, safe="")), repeatable=True
    )
    if answer.status in (204, 404):
        return answer.status == 204
    raise ServiceError(f"revoke a session: the service answered {answer.status}")


def revoke_all_sessions(user, except_current=None) -> int:
    """Logs the user out everywhere, except `except_current` (a request's session) when
    given; returns how many sessions were removed. Once it returns, no session of the
    user from before the call is served again."""
    keep = getattr(except_current, "session_key", None)
    path = _path(user, **({"except": keep} if valid_key(keep) else {}))
    revoked = 0
    for _ in range(REVOKE_CALLS):
        answer = client().request("DELETE", path, repeatable=True)
        body = answer.body
        if answer.status not in (200, 202) or not isinstance(body, dict):
            raise ServiceError(f"revoke a user's sessions: the service answered {answer.status}")
        revoked += int(body.get("revoked") or 0)
        if answer.status == 200:
            return revoked
    raise ServiceError(f"revoke a user's sessions: still incomplete after {REVOKE_CALLS} calls")
