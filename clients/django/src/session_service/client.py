"""HTTP to the session service: one thread-safe connection pool per process, SigV4
signing for AWS_IAM, and retries only where a repeat cannot do harm."""

from __future__ import annotations

import hashlib
import json
import random
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import quote, urlsplit

import urllib3
from urllib3.exceptions import ConnectTimeoutError, HTTPError, NewConnectionError

#: Answers that say "try again later": throttled, or the table was unavailable.
RETRY_STATUSES = frozenset({429, 503})
#: The longest `Retry-After` a request waits for; a longer one ends the tries at once.
MAX_RETRY_AFTER_SECONDS = 2


def route(path: str) -> str:
    """A path as its route template, for messages: session keys and principals never
    reach a site's logs or error reports."""
    path = path.split("?", 1)[0]
    path = re.sub(r"^/sessions/[^/]+", "/sessions/{key}", path)
    return re.sub(r"^/principals/[^/]+/sessions(/[^/]+)?",
                  lambda m: "/principals/{principal}/sessions" + ("/{id}" if m.group(1) else ""),
                  path)


class ServiceError(Exception):
    """The service gave no usable answer (down, 5xx after retries, an unexpected status).
    Raised, never read as an empty session, which would log the user out silently."""


class WrongRegion(ServiceError):
    """A write to a session homed in another region (421), with no URL for that region."""

    def __init__(self, home_region: str | None):
        self.home_region = home_region
        super().__init__(
            f"the session's home region is {home_region or 'not named'}; "
            "add its URL to SESSION_SERVICE_REGION_URLS to follow it there"
        )


@dataclass
class Answer:
    status: int
    headers: Mapping[str, str]
    body: Any = None

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


@dataclass
class Settings:
    """What the client needs, read once from Django's settings (`from_django`)."""

    url: str
    region_urls: Mapping[str, str] = field(default_factory=dict)
    auth: str = "AWS_IAM"
    connect_timeout: float = 1.0
    read_timeout: float = 5.0
    attempts: int = 3
    signing_name: str | None = None
    signing_region: str | None = None
    principals: bool = True

    @classmethod
    def from_django(cls, settings) -> "Settings":
        url = getattr(settings, "SESSION_SERVICE_URL", None)
        if not url or not isinstance(url, str):
            raise ValueError("SESSION_SERVICE_URL must be the service's base URL")
        auth = str(getattr(settings, "SESSION_SERVICE_AUTH", "AWS_IAM")).upper()
        if auth not in ("AWS_IAM", "NONE"):
            raise ValueError("SESSION_SERVICE_AUTH must be AWS_IAM or NONE")
        timeout = getattr(settings, "SESSION_SERVICE_TIMEOUT", (1.0, 5.0))
        connect, read = timeout if isinstance(timeout, (tuple, list)) else (timeout, timeout)
        attempts = int(getattr(settings, "SESSION_SERVICE_ATTEMPTS", 3))
        if attempts < 1:
            raise ValueError("SESSION_SERVICE_ATTEMPTS must be at least 1")
        return cls(
            url=url,
            region_urls=dict(getattr(settings, "SESSION_SERVICE_REGION_URLS", {}) or {}),
            auth=auth,
            connect_timeout=float(connect),
            read_timeout=float(read),
            attempts=attempts,
            signing_name=getattr(settings, "SESSION_SERVICE_SIGNING_NAME", None),
            signing_region=getattr(settings, "SESSION_SERVICE_SIGNING_REGION", None),
            principals=bool(getattr(settings, "SESSION_SERVICE_PRINCIPALS", True)),
        )


def signing_scope(url: str, name: str | None, region: str | None) -> tuple[str, str | None]:
    """The SigV4 service and region for a URL: `lambda` for a function URL
    (`<id>.lambda-url.<region>.on.aws`), `execute-api` for an API Gateway URL
    (`<id>.execute-api.<region>.amazonaws.com`); settings win, for custom domains."""
    host = (urlsplit(url).hostname or "").lower()
    parts = host.split(".")
    service = name or ("lambda" if "lambda-url" in parts else "execute-api")
    if region is None:
        for marker in ("lambda-url", "execute-api"):
            if marker in parts and parts.index(marker) + 1 < len(parts):
                region = parts[parts.index(marker) + 1]
    return service, region


class Signer:
    """SigV4 with botocore's signer and the standard credential chain (environment,
    profile, SSO, container or instance role); credentials refresh as botocore's do."""

    def __init__(self, service: str, region: str | None, credentials=None):
        import botocore.session

        session = botocore.session.get_session()
        self.service = service
        self.region = region or session.get_config_variable("region")
        if not self.region:
            raise ValueError(
                "no region to sign for: set SESSION_SERVICE_SIGNING_REGION or AWS_REGION"
            )
        self._credentials = credentials or session.get_credentials()
        if self._credentials is None:
            raise ValueError("AWS_IAM auth found no AWS credentials in the standard chain")

    def headers(self, method: str, url: str, body: bytes | None, headers: dict) -> dict:
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest

        headers = dict(headers)
        # Function URLs ask for the payload's hash as a header on PUT and POST.
        headers["X-Amz-Content-SHA256"] = hashlib.sha256(body or b"").hexdigest()
        request = AWSRequest(method=method, url=url, data=body or b"", headers=headers)
        frozen = self._credentials.get_frozen_credentials()
        SigV4Auth(frozen, self.service, self.region).add_auth(request)
        return dict(request.headers.items())


def sent_nothing(error: Exception) -> bool:
    """A failure before any byte of the request left: nothing can have happened."""
    return isinstance(error, (NewConnectionError, ConnectTimeoutError))


class Client:
    """Requests to the API. `repeatable` says whether a request may be sent again after
    it may have reached the service: GET, HEAD, DELETE and a PUT with If-Match may; a
    POST (create, cycle) is sent again only when the connection failed before it left."""

    def __init__(
        self,
        settings: Settings,
        pool: urllib3.PoolManager | None = None,
        signer_for: Callable[[str], Signer] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.settings = settings
        self._pool = pool or urllib3.PoolManager(num_pools=4, maxsize=16, block=False)
        self._timeout = urllib3.Timeout(
            connect=settings.connect_timeout, read=settings.read_timeout
        )
        self._signers: dict[str, Signer] = {}
        self._signer_for = signer_for or self._default_signer
        self._sleep = sleep

    def _default_signer(self, base: str) -> Signer:
        # A region's own URL is signed for that region, whatever the main one's is.
        home = next((r for r, url in self.settings.region_urls.items() if url == base), None)
        service, region = signing_scope(
            base, self.settings.signing_name, home or self.settings.signing_region
        )
        return Signer(service, region)

    def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        headers: Mapping[str, str] | None = None,
        repeatable: bool,
        content_type: str = "application/json",
    ) -> Answer:
        answer = self._send(self.settings.url, method, path, body, headers, repeatable, content_type)
        if answer.status == 421:
            home = _home_region(answer)
            base = self.settings.region_urls.get(home) if home else None
            if base is None:
                raise WrongRegion(home)
            answer = self._send(base, method, path, body, headers, repeatable, content_type)
            if answer.status == 421:
                raise WrongRegion(_home_region(answer))
        return answer

    def _send(self, base, method, path, body, headers, repeatable, content_type) -> Answer:
        url = base.rstrip("/") + path
        payload = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        plain = {"Accept": "application/json, application/problem+json"}
        if payload is not None:
            plain["Content-Type"] = content_type
        plain.update(headers or {})
        last: Exception | None = None
        for attempt in range(self.settings.attempts):
            if attempt:
                self._sleep(self._backoff(attempt, last))
            sent = plain
            if self.settings.auth == "AWS_IAM":
                signer = self._signers.get(base)
                if signer is None:
                    signer = self._signers[base] = self._signer_for(base)
                sent = signer.headers(method, url, payload, plain)
            try:
                raw = self._pool.request(
                    method,
                    url,
                    body=payload,
                    headers=sent,
                    timeout=self._timeout,
                    retries=False,
                    redirect=False,
                )
            except HTTPError as error:
                last = error
                if repeatable or sent_nothing(error):
                    continue
                raise ServiceError(f"{method} {route(path)}: {type(error).__name__}") from error
            answer = Answer(raw.status, {k.lower(): v for k, v in raw.headers.items()}, _json(raw.data))
            if answer.status in RETRY_STATUSES and repeatable and _retry_after(answer) is not None:
                last = _Status(answer)
                continue
            if answer.status >= 500 or answer.status in RETRY_STATUSES:
                raise ServiceError(
                    f"{method} {route(path)}: the service answered {answer.status}: {_detail(answer)}"
                )
            return answer
        raise ServiceError(
            f"{method} {route(path)}: no answer after {self.settings.attempts} tries: "
            f"{type(last).__name__ if not isinstance(last, _Status) else last}"
        )

    @staticmethod
    def _backoff(attempt: int, last: Exception | None) -> float:
        """The service's Retry-After when it gives one, else full jitter from 50 ms
        doubling up to 1 s."""
        if isinstance(last, _Status):
            after = _retry_after(last.answer)
            if after:
                return after
        return random.uniform(0, min(1.0, 0.05 * 2 ** (attempt - 1)))


def _retry_after(answer: Answer) -> float | None:
    """Seconds the service asks to wait (0 when it names none); None when that is longer
    than a request should wait, so the tries end and the error is raised at once."""
    after = answer.headers.get("retry-after", "").strip()
    if not after:
        return 0.0
    if not (after.isascii() and after.isdigit()) or int(after) > MAX_RETRY_AFTER_SECONDS:
        return None
    return float(after)


class _Status(Exception):
    def __init__(self, answer: Answer):
        self.answer = answer
        super().__init__(f"answered {answer.status}")


def _home_region(answer: Answer) -> str | None:
    body = answer.body if isinstance(answer.body, dict) else {}
    home = body.get("home_region")
    return home if isinstance(home, str) else None


def _json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return json.loads(data)
    except ValueError:
        return None


def _detail(answer: Answer) -> str:
    body = answer.body
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or "")
    return ""


def key_path(key: str) -> str:
    return "/sessions/" + quote(key, safe="")
