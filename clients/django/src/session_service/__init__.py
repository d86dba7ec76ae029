"""Django sessions kept by the session service: `SESSION_ENGINE =
"session_service.session"` and `SESSION_SERVICE_URL`."""

from .client import ServiceError, WrongRegion
from .users import list_sessions, revoke_all_sessions, revoke_session, session_handle

__all__ = [
    "ServiceError",
    "WrongRegion",
    "list_sessions",
    "revoke_all_sessions",
    "revoke_session",
    "session_handle",
]
