"""End-to-end check over real HTTP: starts `make dev` on free loopback ports, runs the
README's walk-through from README.md itself (tools/walkthrough.py) and a few checks of its
own, runs schemathesis against openapi.yaml on it (at least API_PROPERTY_CASES generated
cases, default 1,000, every check), shows that a second `make dev` on the same ports
refuses to start, then stops it with SIGTERM and checks that nothing it started is left
listening. Last, a new `make dev` whose process group gets SIGKILL leaves nothing
running or listening either."""

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import stream_runner
import walkthrough

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
results = []


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def call(method, url, body=None, headers=None, timeout=30):
    data = body.encode() if isinstance(body, str) else body
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def check(name, ok, detail=""):
    results.append(bool(ok))
    print(f"{'ok  ' if ok else 'FAIL'} {name}{'' if ok else ': ' + detail}", flush=True)


def properties(base):
    """Schemathesis, every check: no 5xx and no response outside the schema."""
    wanted = int(os.environ.get("API_PROPERTY_CASES", "1000"))
    tool = os.path.join(ROOT, ".venv", "schemathesis", "bin", "schemathesis")
    started = time.time()
    # Its caches go under target/, where make dev's file watcher does not look.
    work = os.path.join(ROOT, "target", "schemathesis")
    os.makedirs(work, exist_ok=True)
    run = subprocess.run(
        [tool, "--config-file", os.path.join(ROOT, "tools", "schemathesis.toml"), "--no-color", "run",
         os.path.join(ROOT, "openapi.yaml"), "--url", base, "--checks", "all",
         # POST /sessions/{key}/cycle retires the key by design (session fixation defence);
         # this check reads any POST as harmless and reports the old key's 404 after a cycle.
         "--exclude-checks", "ensure_resource_availability", "--workers", "1",
         "--max-examples", str(max(wanted // 6, 10)), "--seed", "20261128",
         "--max-time", os.environ.get("API_PROPERTY_SECONDS", "50")],
        cwd=work, capture_output=True, text=True)
    output = run.stdout + run.stderr
    with open(os.path.join(ROOT, "target", "e2e-schemathesis.log"), "w") as log:
        log.write(output)
    generated = re.search(r"Test cases:\s*(\d+) generated", output)
    cases = int(generated.group(1)) if generated else 0
    print(f"schemathesis: {cases} generated cases in {time.time() - started:.0f} s", flush=True)
    # make dev's Lambda emulator (cargo lambda) answers a body that is not UTF-8 with a 500
    # of its own, before the function sees it; API Gateway base64-encodes such a body and
    # the function answers 400 (tested in functions/session-api/tests). Those failures,
    # recognisable by the emulator's problem type, are counted; any other fails the check.
    failures = re.split(r"\n\d+\. Test Case ID: ", output.split("=== FAILURES ===")[-1])[1:]
    emulator = [f for f in failures if "https://httpstatuses.com/500" in f]
    ours = run.returncode == 0 or (failures and len(emulator) == len(failures) and "Network Error" not in output)
    if emulator:
        print(f"schemathesis: {len(emulator)} failures were the emulator's 500 for a non-UTF-8 body",
              flush=True)
    check("schemathesis finds no failure in the service", bool(ours), output[-4000:])
    check(f"schemathesis generated at least {wanted} cases", cases >= wanted, str(cases))


def start_dev(name, db_port, api_port, **settings):
    """`make dev` on the given ports in a process group of its own, its output in target/."""
    env = dict(os.environ, DYNAMODB_PORT=str(db_port), API_PORT=str(api_port), SESSION_TABLE="e2e",
               **settings)
    log = open(os.path.join(ROOT, "target", f"e2e-{name}.log"), "w")
    dev = subprocess.Popen(["make", "--no-print-directory", "dev"], cwd=ROOT, env=env, stdout=log,
                           stderr=subprocess.STDOUT, start_new_session=True)
    return dev, log


def wait_listening(dev, log, port):
    deadline = time.time() + 900
    while not listening(port):
        if dev.poll() is not None or time.time() > deadline:
            check("make dev starts", False, f"see {log.name}")
            return False
        time.sleep(0.5)
    return True


def group_members(pgid):
    """Process ids whose process group is pgid, or whose ancestor's is."""
    parents, groups = {}, {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[int(entry)], groups[int(entry)] = int(fields[1]), int(fields[2])
    members = {pid for pid, group in groups.items() if group == pgid}
    grew = True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in members} - members
        members |= more
        grew = bool(more)
    return members


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def other_functions(api_port):
    """The cleanup and the auditor through make dev's emulator, with the committed events,
    as the README shows (`cargo lambda invoke`)."""
    def invoke(function, event):
        run = subprocess.run(
            [os.path.join(ROOT, ".venv", "bin", "cargo-lambda"), "lambda", "invoke", function,
             "--data-file", os.path.join("events", event), "--invoke-address", "127.0.0.1",
             "--invoke-port", str(api_port)],
            cwd=ROOT, capture_output=True, text=True, timeout=900)
        try:
            return json.loads(run.stdout)
        except ValueError:
            return {"failed": (run.stdout + run.stderr)[-500:]}

    summary = invoke("session-cleanup", "schedule-cleanup.json")
    check("the cleanup runs under make dev with its scheduled event",
          summary.get("complete") is True and summary.get("errors") == 0, str(summary))
    for event in ("stream-backend-write.json", "stream-tombstone-write.json",
                  "stream-backend-login.json"):
        answer = invoke("session-cleanup", event)
        check(f"the upkeep takes events/{event} under make dev",
              answer == {"batchItemFailures": []}, str(answer))
    for event in ("stream-insert.json", "stream-modify.json", "stream-remove.json",
                  "stream-expire.json", "stream-backend-write.json", "stream-tombstone-write.json",
                  "stream-backend-login.json"):
        answer = invoke("session-auditor", event)
        check(f"the auditor audits events/{event} under make dev",
              answer == {"batchItemFailures": []}, str(answer))


def audited(log_path, key, action, **fields):
    """Whether make dev's output holds the audit line of `action` on `key`'s session (with
    these `fields`, when given), which the stream runner's delivery to the auditor prints;
    waits up to a minute."""
    fingerprint = hashlib.sha256(key.encode()).hexdigest()[:16]
    deadline = time.time() + 60
    while time.time() < deadline:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("{") and f'"session":"{fingerprint}"' in line:
                    try:
                        audit = json.loads(line)
                        if audit.get("action") == action and all(
                                audit.get(k) == v for k, v in fields.items()):
                            return True
                    except ValueError:
                        pass
        time.sleep(0.5)
    return False


def upkeep_stamps_backend_writes(log_path, db_port):
    """API writes never reach the upkeep (the template's filter passes none of them);
    a write by the Django backend (its `save()`: SET data, nothing else) does, and is
    stamped with an expiry."""
    import boto3

    with open(log_path, encoding="utf-8", errors="replace") as f:
        before = f.read()
    check("the upkeep's filter passes none of the API's writes",
          "records to session-cleanup" not in before, "the upkeep was invoked")
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{db_port}",
                          region_name="us-east-1", aws_access_key_id="local",
                          aws_secret_access_key="local")
    key = "b" * 32
    client.update_item(TableName="e2e", Key={"session_key": {"S": key}},
                       UpdateExpression="SET #data = :data",
                       ExpressionAttributeNames={"#data": "data"},
                       ExpressionAttributeValues={":data": {"S": "{}"}})
    deadline, item = time.time() + 120, {}
    while time.time() < deadline and "expires_at" not in item:
        item = client.get_item(TableName="e2e", Key={"session_key": {"S": key}},
                               ConsistentRead=True).get("Item", {})
        time.sleep(0.5)
    check("the upkeep stamps an expiry on the Django backend's write, from the stream",
          "expires_at" in item, str(item))


def ttl_removal_reaches_the_auditor(base, log_path):
    """A session past its expiry is deleted by the emulator's TTL sweep as DynamoDB's TTL
    deletes it (the record's userIdentity is the service), and the stream runner brings
    that removal to the auditor, which logs it as expired by TTL."""
    status, _, text = call("POST", f"{base}/sessions", '{"data": {"n": 1}, "ttl_seconds": 1}',
                           {"content-type": "application/json"})
    key = json.loads(text).get("session_key") if status == 201 else None
    check("a session of one second is created", status == 201, text)
    check("Dynoxide's TTL removal of it reaches the auditor as removed_by ttl",
          key is not None and audited(log_path, key, "expired", removed_by="ttl"),
          f"see {log_path}")


def stop_dev(dev):
    """SIGTERM to make dev's process group; SIGKILL for what is left after a minute."""
    started = group_members(dev.pid)
    os.killpg(dev.pid, signal.SIGTERM)
    deadline = time.time() + 60
    while time.time() < deadline and any(alive(p) for p in started):
        time.sleep(0.2)
    left = [p for p in started if alive(p)]
    if left:
        os.killpg(dev.pid, signal.SIGKILL)
    return left


def shared_with_django():
    """make dev with SESSION_CODEC=django, as beside a Django site on the same table: a
    deleted session stays a tombstone that a backend save cannot bring back (the upkeep,
    fed by the stream runner, removes what the save wrote), and a backend save between a
    GET and a PUT fails the PUT's If-Match. It ends by SIGKILL, which must leave nothing."""
    import boto3

    db_port, api_port = free_port(), free_port()
    dev, log = start_dev("dev-django", db_port, api_port, SESSION_CODEC="django",
                         DJANGO_SECRET_KEY="e2e-shared-table-secret")
    base = f"http://127.0.0.1:{api_port}/lambda-url/session-api"
    try:
        if not wait_listening(dev, log, api_port):
            return
        client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{db_port}",
                              region_name="us-east-1", aws_access_key_id="local",
                              aws_secret_access_key="local")

        def backend_save(key):
            client.update_item(TableName="e2e", Key={"session_key": {"S": key}},
                               UpdateExpression="SET #data = :data",
                               ExpressionAttributeNames={"#data": "data"},
                               ExpressionAttributeValues={":data": {"S": "saved-by-django"}})

        def item(key):
            return client.get_item(TableName="e2e", Key={"session_key": {"S": key}},
                                   ConsistentRead=True).get("Item")

        body, json_type = '{"data": {"user": 7}}', {"content-type": "application/json"}
        status, headers, text = call("POST", f"{base}/sessions", body, json_type, timeout=900)
        key = json.loads(text).get("session_key") if status == 201 else None
        check("with the django codec the ETag carries the data's hash",
              status == 201 and bool(re.fullmatch(r'"1\.[0-9a-f]{12}"', headers.get("etag", ""))),
              f"{status} {headers}")
        status, _, _ = call("DELETE", f"{base}/sessions/{key}")
        left = item(key) or {}
        check("a delete leaves a tombstone", status == 204 and "removed_at" in left, str(left))
        backend_save(key)
        status, _, _ = call("GET", f"{base}/sessions/{key}")
        check("a backend save onto the tombstone is never served", status == 404, str(status))
        deadline = time.time() + 120
        while time.time() < deadline and item(key) is not None:
            time.sleep(0.5)
        check("the upkeep removes what the backend saved onto the tombstone",
              item(key) is None, str(item(key)))
        for action in ("tombstoned", "resurrection_attempt", "tombstone_removed"):
            check(f"the audit trail shows {action}", audited(log.name, key, action),
                  f"see {log.name}")

        status, headers, text = call("POST", f"{base}/sessions", body, json_type)
        key = json.loads(text).get("session_key") if status == 201 else None
        status, headers, _ = call("GET", f"{base}/sessions/{key}")
        etag = headers.get("etag", "")
        backend_save(key)
        status, _, text = call("PUT", f"{base}/sessions/{key}", '{"data": {"user": 8}}',
                               dict(json_type, **{"if-match": etag}))
        check("a backend save between GET and PUT fails the PUT's If-Match with 412",
              status == 412 and item(key)["data"]["S"] == "saved-by-django", f"{status} {text}")

        # A login on the Django site (the real backend, its cycle_key() and save) gives
        # the new session its user as principal through the upkeep; logging that user out
        # everywhere reaches it, and Django then loads it as an empty session.
        backend_env = dict(os.environ, AWS_ENDPOINT_URL_DYNAMODB=f"http://127.0.0.1:{db_port}",
                           SESSION_TABLE="e2e", DJANGO_SECRET_KEY="e2e-shared-table-secret")

        def django(command, request):
            done = subprocess.run([sys.executable, os.path.join(ROOT, "tools/django_backend.py"),
                                   command], input=json.dumps(request), capture_output=True,
                                  text=True, env=backend_env, timeout=120)
            return json.loads(done.stdout) if done.returncode == 0 else {"error": done.stderr}

        logged_in = django("login", {"user": "e2e-user-42"}).get("key", "")
        handle = hashlib.sha256(logged_in.encode()).hexdigest()[:16]
        listing = f"{base}/principals/e2e-user-42/sessions"
        listed = []
        deadline = time.time() + 120
        while time.time() < deadline and handle not in listed:
            status, _, text = call("GET", listing)
            listed = [s["id"] for s in json.loads(text).get("sessions", [])] if status == 200 else []
            time.sleep(0.5)
        check("a Django login's session is listed under its user, through the upkeep",
              listed == [handle], f"{listed} {handle}")
        status, _, text = call("DELETE", listing)
        check("logging the user out everywhere revokes the Django session",
              status == 200 and json.loads(text).get("revoked") == 1, f"{status} {text}")
        read = django("read", {"keys": [logged_in]}).get("sessions", [{}])[0]
        check("Django then loads that session as an empty one",
              read.get("data") == {}, str(read))
        django_client(base, "django")
    finally:
        killed_leaves_nothing(dev, db_port, api_port)


def django_client(base, codec):
    """Django's own SessionTestsMixin, and the client's race and revocation tests, through
    the installed package (SESSION_ENGINE = "session_service.session") against this make
    dev, under each Django release the package supports: one Python per venv, from
    E2E_DJANGO_PYTHONS (make e2e sets it), each naming the Django it runs."""
    for python in os.environ.get("E2E_DJANGO_PYTHONS", sys.executable).split():
        done = subprocess.run([python, os.path.join(ROOT, "tools", "django_client.py"),
                               "service", base, codec], capture_output=True, text=True, timeout=900)
        release = re.search(r"^django_client: (Django \S+)", done.stderr, re.M)
        release = release.group(1) if release else python
        ran = re.findall(r"^(Ran \d+ tests?.*|OK.*|FAILED.*)$", done.stderr, re.M)
        print(f"e2e: the Django client under {release} with the {codec} codec: "
              f"{' '.join(ran) or 'did not run'}", flush=True)
        check(f"Django's SessionTestsMixin and the client's tests pass through the package "
              f"under {release} ({codec} codec)", done.returncode == 0, done.stderr[-6000:])


def second_copy_refused(db_port, api_port):
    """A make dev on ports that the first one holds refuses, naming the port and its owner."""
    second, log = start_dev("dev-second", db_port, api_port)
    try:
        second.wait(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(second.pid, signal.SIGKILL)
    with open(log.name) as f:
        said = f.read()
    check("a second make dev on taken ports refuses to start, naming the port and its owner",
          second.returncode not in (None, 0) and f"port {db_port} (DYNAMODB_PORT) is already in use by local-dynamodb"
          in said, f"exit {second.returncode}: {said[-500:]}")


def killed_leaves_nothing(dev, db_port, api_port):
    """SIGKILL to make dev's process group: no trap runs, yet its children end too."""
    started = group_members(dev.pid)
    os.killpg(dev.pid, signal.SIGKILL)
    dev.wait()
    deadline = time.time() + 30
    while time.time() < deadline and (any(alive(p) for p in started) or listening(db_port)
                                       or listening(api_port)):
        time.sleep(0.2)
    left = [p for p in started if alive(p)]
    check("after SIGKILL to make dev's process group nothing of it runs or listens",
          len(started) >= 4 and not left and not listening(db_port) and not listening(api_port),
          f"started {sorted(started)}, left {left}, ports {db_port}, {api_port}")


def main():
    db_port, api_port = free_port(), free_port()
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    dev, log = start_dev("dev", db_port, api_port)
    base = f"http://127.0.0.1:{api_port}/lambda-url/session-api"
    try:
        if not wait_listening(dev, log, api_port):
            return
        # The first request waits for the function to compile.
        status, headers, text = call("POST", f"{base}/sessions", '{"data": {"cart": ["book"]}}',
                                     {"content-type": "application/json"}, timeout=900)
        check("create answers 201", status == 201, f"{status} {text}")
        session = json.loads(text)
        key = session["session_key"]
        check("create sets ETag and Location",
              headers.get("etag") == '"1"' and headers.get("location", "").endswith(f"/sessions/{key}"),
              str(headers))

        status, headers, text = call("GET", f"{base}/sessions/{key}")
        check("read answers the session", status == 200 and json.loads(text)["data"] == {"cart": ["book"]}, text)

        merge = {"content-type": "application/merge-patch+json", "if-match": '"1"'}
        status, headers, text = call("PATCH", f"{base}/sessions/{key}", '{"theme": "dark"}', merge)
        check("patch merges", status == 200 and json.loads(text)["data"] == {"cart": ["book"], "theme": "dark"}, text)
        status, _, text = call("PATCH", f"{base}/sessions/{key}", '{"theme": "light"}', merge)
        check("a stale If-Match is 412", status == 412, f"{status} {text}")

        status, _, text = call("POST", f"{base}/sessions/{key}/cycle")
        new_key = json.loads(text).get("session_key") if status == 200 else None
        check("cycle gives a new key", status == 200 and new_key not in (None, key), text)
        status, _, _ = call("GET", f"{base}/sessions/{key}")
        check("the old key is gone", status == 404, str(status))

        status, _, text = call("DELETE", f"{base}/sessions/{new_key}")
        check("delete answers 204", status == 204, f"{status} {text}")
        status, headers, text = call("GET", f"{base}/sessions/{new_key}")
        check("a deleted session is 404 as a problem document",
              status == 404 and headers.get("content-type") == "application/problem+json"
              and json.loads(text)["status"] == 404, f"{status} {headers} {text}")

        status, headers, text = call("POST", f"{base}/sessions", '{"data": [', {"content-type": "application/json"})
        check("malformed JSON is 400", status == 400 and "not valid JSON" in json.loads(text)["detail"], text)
        status, headers, _ = call("DELETE", f"{base}/sessions")
        check("a wrong method is 405 with Allow", status == 405 and headers.get("allow") == "POST", str(headers))
        check("the stream runner's filters decide as Lambda's do", stream_runner.self_test())
        check("make dev's stream runner feeds the auditor: the session's creation is audited",
              audited(log.name, key, "created"), f"see {log.name}")
        check("and its deletion under the cycled key", audited(log.name, new_key, "deleted"),
              f"see {log.name}")
        ttl_removal_reaches_the_auditor(base, log.name)
        walkthrough.run(os.path.join(ROOT, "README.md"), api_port, check)
        upkeep_stamps_backend_writes(log.name, db_port)
        other_functions(api_port)
        properties(base)
        django_client(base, "json")
        second_copy_refused(db_port, api_port)
    finally:
        # make ends at once; its script stops what it started, within seconds.
        left = stop_dev(dev)
        check("SIGTERM stops make dev and all it started", not left, f"still running: {left}")
        check("nothing is left listening", not listening(api_port) and not listening(db_port),
              f"ports {db_port}, {api_port}")
        shared_with_django()
        passed = sum(results)
        print(f"e2e: {passed} passed, {len(results) - passed} failed")
    if not all(results):
        sys.exit(1)


if __name__ == "__main__":
    main()
