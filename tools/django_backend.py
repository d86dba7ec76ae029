"""Drives the Django backend, django-dynamodb-sessions, through Django itself.

Used by the interop tests and the benchmark to write and read sessions the way a Django
site does. Reads one JSON document on stdin, writes one on stdout.

    django_backend.py write   {"sessions": [{"data": {...}, "expiry": null|300|"ISO", "via": "create"|"save"}]}
                           -> {"keys": [...]}
    django_backend.py read    {"keys": [...]}
                           -> {"sessions": [{"key", "exists", "data", "expiry_age"}],
                               "warnings": [what Django logged as suspicious, e.g.
                                            "Session data corrupted"]}
    django_backend.py save    {"sessions": [{"key", "data": {...}}]}  load each and save
                           it with this data added, as a Django request does -> {}
    django_backend.py login   {"user": "42"}  what django.contrib.auth.login() does to
                           an anonymous visitor's session: cycle_key(), then the user's
                           id, backend and hash saved into the new key -> {"key", "old"}
    django_backend.py cold    {}  one session created in this fresh process -> {"key"}
    django_backend.py warm    {"cycles": N}  N x (create, get, patch, delete) after one
                           warm-up cycle -> {"requests", "cpu_s", "wall_s"}
    django_backend.py ops     {"cycles": N}  cold's line, then the warm workload with each
                           operation timed -> {"key"}, then {"create": [ms, ...], "get":
                           [...], "merge-update": [...], "delete": [...]}
    django_backend.py count   {}  DynamoDB requests sent per operation -> {operation: n}
    django_backend.py requests {"cycles": N}  N Django requests that load one session and
                           save a change to it -> {"wall_ms": [...], "cpu_s", "requests"}

With SESSION_SERVICE_URL set (127.0.0.1 only), the engine is the service's own Django
client (clients/django) instead of the backend: the bench compares the two.

Settings come from the environment: SESSION_TABLE, AWS_ENDPOINT_URL_DYNAMODB (the local
endpoint, 127.0.0.1 only), DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FALLBACKS (comma
separated).
"""

import datetime
import json
import os
import sys
from urllib.parse import urlparse


def configure():
    service = os.environ.get("SESSION_SERVICE_URL")
    endpoint = service or os.environ["AWS_ENDPOINT_URL_DYNAMODB"]
    if urlparse(endpoint).hostname not in ("127.0.0.1", "localhost"):
        raise SystemExit(f"refusing a non-local endpoint: {endpoint}")
    import django
    from django.conf import settings

    if service:
        # The service's own Django client (clients/django) instead of the backend.
        # Signed as a deployed site signs (AWS_IAM), with static credentials that the
        # local front ignores, so that the CPU figure includes SigV4 as the backend's does.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bench")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bench")
        settings.configure(SECRET_KEY="bench", USE_TZ=True, INSTALLED_APPS=[],
                           SESSION_ENGINE="session_service.session",
                           SESSION_SERVICE_URL=service, SESSION_SERVICE_AUTH="AWS_IAM",
                           SESSION_SERVICE_SIGNING_NAME="lambda",
                           SESSION_SERVICE_SIGNING_REGION="us-east-1")
        django.setup()
        from session_service.session import SessionStore as ServiceStore

        return ServiceStore

    fallbacks = [
        f.strip()
        for f in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "").split(",")
        if f.strip()
    ]
    settings.configure(
        SECRET_KEY=os.environ["DJANGO_SECRET_KEY"],
        SECRET_KEY_FALLBACKS=fallbacks,
        USE_TZ=True,
        INSTALLED_APPS=[],
        SESSION_ENGINE="dynamodb_sessions.backends.dynamodb",
        DYNAMODB_SESSIONS_TABLE_NAME=os.environ.get("SESSION_TABLE", "sessions"),
        LOCAL_DYNAMODB_SERVER=endpoint,
        AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
        AWS_REGION_NAME=os.environ.get("AWS_REGION", "us-east-1"),
    )
    django.setup()
    from dynamodb_sessions.backends.dynamodb import SessionStore

    return SessionStore


def write(store_class, request):
    keys = []
    for spec in request["sessions"]:
        session = store_class()
        session.update(spec["data"])
        expiry = spec.get("expiry")
        if isinstance(expiry, str):
            session.set_expiry(datetime.datetime.fromisoformat(expiry))
        elif expiry is not None:
            session.set_expiry(expiry)
        # `create` sets `created`; a plain save of a new session does not.
        session.save(must_create=spec.get("via", "create") == "create")
        keys.append(session.session_key)
    return {"keys": keys}


class _Collect:
    """Collects what Django logs under django.security (a corrupted session's warning)."""

    def __init__(self):
        import logging

        self.messages = []
        handler = logging.Handler()
        handler.emit = lambda record: self.messages.append(record.getMessage())
        logging.getLogger("django.security").addHandler(handler)


def save(store_class, request):
    for spec in request["sessions"]:
        session = store_class(session_key=spec["key"])
        session.update(spec["data"])
        session.save()
    return {}


def login(store_class, request):
    session = store_class()
    session["cart"] = ["book"]
    session.save(must_create=True)
    old = session.session_key
    # django.contrib.auth.login(): a new key for the same data, then the user in it.
    session.cycle_key()
    session["_auth_user_id"] = request["user"]
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = "0" * 64
    session.save()
    return {"key": session.session_key, "old": old}


def read(store_class, request):
    logged = _Collect()
    out = []
    for key in request["keys"]:
        session = store_class(session_key=key)
        # The Django backend's load() creates a session when the key is unknown: ask first.
        if not session.exists(key):
            out.append({"key": key, "exists": False})
            continue
        data = dict(session.items())
        out.append(
            {
                "key": key,
                "exists": True,
                "data": data,
                "expiry_age": session.get_expiry_age(),
            }
        )
    return {"sessions": out, "warnings": logged.messages}


BENCH_DATA = {"cart": ["book"], "theme": "dark"}


def cold(store_class, request):
    session = store_class()
    session.update(BENCH_DATA)
    session.create()
    return {"key": session.session_key}


def cycle(store_class):
    """One create, get, patch and delete, as a site's requests would make them."""
    session = store_class()
    session.update(BENCH_DATA)
    session.create()
    key = session.session_key
    store_class(session_key=key).load()
    patched = store_class(session_key=key)
    patched["theme"] = "light"
    patched.save()
    store_class(session_key=key).delete()


def warm(store_class, request):
    import time

    cycles = int(request["cycles"])
    cycle(store_class)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(cycles):
        cycle(store_class)
    return {
        "requests": 4 * cycles,
        "cpu_s": time.process_time() - cpu,
        "wall_s": time.perf_counter() - wall,
    }


def ops(store_class, request):
    """A cold start's line first (the process's first session created), then the warm
    workload with each operation timed: milliseconds per call, by operation."""
    import time

    cycles = int(request["cycles"])
    json.dump(cold(store_class, request), sys.stdout)
    sys.stdout.write("\n")
    sys.stdout.flush()
    cycle(store_class)
    times = {"create": [], "get": [], "merge-update": [], "delete": []}

    def timed(name, action):
        started = time.perf_counter()
        result = action()
        times[name].append((time.perf_counter() - started) * 1e3)
        return result

    for _ in range(cycles):
        session = store_class()
        session.update(BENCH_DATA)
        timed("create", session.create)
        key = session.session_key
        timed("get", store_class(session_key=key).load)
        patched = store_class(session_key=key)

        def merge_update():
            patched["theme"] = "light"
            patched.save()

        timed("merge-update", merge_update)
        timed("delete", store_class(session_key=key).delete)
    return times


def requests_sent():
    """A list that grows by one for each request the engine sends: to DynamoDB for the
    backend, over HTTP to the service for the client."""
    sent = []
    if os.environ.get("SESSION_SERVICE_URL"):
        from session_service.session import client

        pool = client()._pool
        send = pool.request

        def counted(*args, **kwargs):
            sent.append(1)
            return send(*args, **kwargs)

        pool.request = counted
    else:
        from dynamodb_sessions.backends.dynamodb import dynamodb_connection_factory

        events = dynamodb_connection_factory().meta.client.meta.events
        events.register("before-send.dynamodb", lambda **kw: sent.append(1))
    return sent


def django_requests(store_class, request):
    """What a Django request that changes its session costs the site: SessionMiddleware's
    load (the view's first access) and its save, on one session, N times after one
    warm-up -> {"wall_ms": [...], "cpu_s", "requests"}."""
    import time

    session = store_class()
    session.update(BENCH_DATA)
    session.create()
    key = session.session_key

    def one(n):
        session = store_class(session_key=key)
        session["visits"] = n
        session.save()

    one(0)
    sent = requests_sent()
    walls = []
    cpu = time.process_time()
    for n in range(int(request["cycles"])):
        started = time.perf_counter()
        one(n + 1)
        walls.append((time.perf_counter() - started) * 1e3)
    return {"wall_ms": walls, "cpu_s": time.process_time() - cpu, "requests": len(sent)}


def count(store_class, request):
    sent = requests_sent()

    def measure(action):
        sent.clear()
        action()
        return len(sent)

    def created():
        session = store_class()
        session.update(BENCH_DATA)
        session.create()
        return session.session_key

    key = created()
    unknown = "0" * 32

    def merge_update():
        session = store_class(session_key=key)
        session["theme"] = "light"
        session.save()

    def replace():
        session = store_class(session_key=key)
        session._session_cache = dict(BENCH_DATA)
        session.save()

    def cycle_key():
        # What a request that logs a user in does: cycle_key(), then the middleware's save.
        session = store_class(session_key=key)
        session.cycle_key()
        session.save()

    result = {
        "create": measure(created),
        "get": measure(lambda: store_class(session_key=key).load()),
        "get of an unknown key": measure(lambda: store_class(session_key=unknown).load()),
        "exists": measure(lambda: store_class().exists(key)),
        "replace": measure(replace),
        "merge-update": measure(merge_update),
        "cycle key": measure(cycle_key),
    }
    fresh = created()
    result["delete"] = measure(lambda: store_class(session_key=fresh).delete())
    return result


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    commands = {"write": write, "save": save, "read": read, "login": login, "cold": cold, "warm": warm, "ops": ops,
                "count": count, "requests": django_requests}
    if command not in commands:
        raise SystemExit(f"usage: django_backend.py {{{','.join(commands)}}} < request.json")
    request = json.load(sys.stdin)
    result = commands[command](configure(), request)
    sys.stdout.flush()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
