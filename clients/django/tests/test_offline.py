"""The package's tests that need no service: signing, retries, regions, the merge."""

import datetime
import hashlib
import hmac
import http.server
import socket
import threading
from unittest import mock

from botocore.credentials import Credentials
from django.test import SimpleTestCase

from session_service.client import (
    Client,
    ServiceError,
    Settings,
    Signer,
    WrongRegion,
    signing_scope,
)
from session_service.merge import Conflict, merge

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
WHEN = datetime.datetime(2015, 8, 30, 12, 36, 0)
URL = "https://abc123.lambda-url.eu-west-1.on.aws/sessions/k"
BODY = b'{"data":{"cart":["book"]},"ttl_seconds":1209600}'
#: What the signer gave for the request above, recorded once and checked against the
#: SigV4 computation written out in `by_hand`.
RECORDED = "fcef97ec97fa70d28d2f0b80f01cea3fdb4d63f54eaa9e2e3c61b663b3dbd8d0"


def signed(token=None):
    signer = Signer("lambda", "eu-west-1", credentials=Credentials(KEY_ID, SECRET, token))
    with mock.patch("botocore.auth.get_current_datetime", return_value=WHEN):
        return signer.headers("PUT", URL, BODY, {"Content-Type": "application/json", "If-Match": '"3"'})


def by_hand(headers):
    """SigV4 as AWS's documentation spells it, for the headers the signer chose to sign."""
    signed_names = headers["Authorization"].split("SignedHeaders=")[1].split(",")[0].split(";")
    values = {k.lower(): v for k, v in headers.items()}
    values["host"] = "abc123.lambda-url.eu-west-1.on.aws"
    canonical = "\n".join(
        ["PUT", "/sessions/k", ""]
        + [f"{name}:{values[name].strip()}" for name in signed_names]
        + ["", ";".join(signed_names), hashlib.sha256(BODY).hexdigest()]
    )
    scope = "20150830/eu-west-1/lambda/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", "20150830T123600Z", scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + SECRET).encode()
    for part in ("20150830", "eu-west-1", "lambda", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()


class SigningTests(SimpleTestCase):
    def test_a_request_is_signed_for_the_function_url_as_recorded(self):
        headers = signed()
        signature = headers["Authorization"].rsplit("Signature=", 1)[1]
        self.assertEqual(signature, by_hand(headers))
        self.assertEqual(signature, RECORDED)
        self.assertIn("Credential=AKIDEXAMPLE/20150830/eu-west-1/lambda/aws4_request",
                      headers["Authorization"])
        self.assertEqual(headers["X-Amz-Content-SHA256"], hashlib.sha256(BODY).hexdigest())

    def test_temporary_credentials_send_their_token_and_sign_it(self):
        headers = signed(token="session-token")
        self.assertEqual(headers["X-Amz-Security-Token"], "session-token")
        self.assertIn("x-amz-security-token", headers["Authorization"])

    def test_the_signing_name_and_region_follow_the_url(self):
        self.assertEqual(signing_scope(URL, None, None), ("lambda", "eu-west-1"))
        self.assertEqual(
            signing_scope("https://x1.execute-api.us-east-2.amazonaws.com/prod", None, None),
            ("execute-api", "us-east-2"),
        )
        self.assertEqual(
            signing_scope("https://sessions.example.com", "execute-api", "eu-central-1"),
            ("execute-api", "eu-central-1"),
        )


class Service(http.server.ThreadingHTTPServer):
    """127.0.0.1 answers from a script: each entry a status, or None to close the
    connection once the request is read."""

    def __init__(self, script):
        self.script = list(script)
        self.seen = []
        super().__init__(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.server.seen.append((self.command, self.path))
        status = self.server.script.pop(0) if self.server.script else 200
        if status is None:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, extra = status if isinstance(status, tuple) else (status, {})
        body = b'{"home_region": "eu-west-1", "status": 421}' if status == 421 else b"{}"
        self.send_response(status)
        self.send_header("Content-Length", "0" if self.command == "HEAD" else str(len(body)))
        self.send_header("Content-Type", "application/json")
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer


def client_for(url, **settings):
    waits = []
    client = Client(Settings(url=url, auth="NONE", **settings), sleep=waits.append)
    return client, waits


class RetryTests(SimpleTestCase):
    def tearDown(self):
        for server in getattr(self, "servers", []):
            server.shutdown()
            server.server_close()

    def service(self, *script):
        server = Service(script)
        self.servers = getattr(self, "servers", []) + [server]
        return server

    def test_a_post_whose_request_was_sent_is_never_sent_again(self):
        for outcome in (None, 503, 429):
            with self.subTest(outcome=outcome):
                server = self.service(outcome, 201)
                client, _ = client_for(server.url)
                with self.assertRaises(ServiceError):
                    client.request("POST", "/sessions", body={"data": {}}, repeatable=False)
                self.assertEqual(server.seen, [("POST", "/sessions")])

    def test_a_post_is_sent_again_when_the_connection_failed_before_it_left(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        client, waits = client_for(f"http://127.0.0.1:{port}", attempts=3)
        with self.assertRaises(ServiceError):
            client.request("POST", "/sessions", body={"data": {}}, repeatable=False)
        self.assertEqual(len(waits), 2)

    def test_reads_and_conditional_writes_are_tried_again_on_throttling_and_unavailability(self):
        for method, headers in (("GET", {}), ("HEAD", {}), ("DELETE", {}), ("PUT", {"If-Match": '"1"'})):
            with self.subTest(method=method):
                server = self.service(503, 429, 200)
                client, waits = client_for(server.url, attempts=3)
                body = {"data": {}} if method == "PUT" else None
                answer = client.request(method, "/sessions/k", body=body, headers=headers, repeatable=True)
                self.assertEqual(answer.status, 200)
                self.assertEqual(len(server.seen), 3)
                self.assertEqual(len(waits), 2)

    def test_the_services_retry_after_is_waited_and_a_long_one_ends_the_tries(self):
        server = self.service((503, {"Retry-After": "1"}), 200)
        client, waits = client_for(server.url)
        self.assertEqual(client.request("GET", "/sessions/k", repeatable=True).status, 200)
        self.assertEqual(waits, [1.0])
        for after in ("30", "\u00b2", "Wed, 21 Oct 2026 07:28:00 GMT"):
            with self.subTest(after=after):
                server = self.service((503, {"Retry-After": after}), 200)
                client, waits = client_for(server.url)
                with self.assertRaises(ServiceError):
                    client.request("GET", "/sessions/k", repeatable=True)
                self.assertEqual((len(server.seen), waits), (1, []))

    def test_errors_name_the_route_never_a_session_key_or_a_principal(self):
        server = self.service(500, 500)
        client, _ = client_for(server.url)
        key = "k" * 32
        with self.assertRaises(ServiceError) as raised:
            client.request("GET", f"/sessions/{key}", repeatable=True)
        self.assertIn("/sessions/{key}", str(raised.exception))
        self.assertNotIn(key, str(raised.exception))
        with self.assertRaises(ServiceError) as raised:
            client.request("DELETE", f"/principals/alice/sessions?except={key}", repeatable=True)
        self.assertNotIn("alice", str(raised.exception))
        self.assertNotIn(key, str(raised.exception))

    def test_a_lost_race_is_never_tried_again(self):
        server = self.service(412)
        client, _ = client_for(server.url)
        answer = client.request("PUT", "/sessions/k", body={"data": {}},
                                headers={"If-Match": '"1"'}, repeatable=True)
        self.assertEqual(answer.status, 412)
        self.assertEqual(len(server.seen), 1)

    def test_an_unavailable_service_raises_after_its_tries_never_reads_as_empty(self):
        server = self.service(503, 503, 503)
        client, _ = client_for(server.url, attempts=3)
        with self.assertRaises(ServiceError):
            client.request("GET", "/sessions/k", repeatable=True)
        self.assertEqual(len(server.seen), 3)

    def test_a_session_homed_elsewhere_is_followed_to_its_regions_url(self):
        here, there = self.service(421), self.service(200)
        client, _ = client_for(here.url, region_urls={"eu-west-1": there.url})
        answer = client.request("PUT", "/sessions/k", body={"data": {}}, repeatable=True)
        self.assertEqual(answer.status, 200)
        self.assertEqual(there.seen, [("PUT", "/sessions/k")])

    def test_a_regions_url_is_signed_for_that_region(self):
        urls = {"eu-west-1": "https://x1.example.com", "us-east-1": "https://x2.example.com"}
        client = Client(Settings(url=urls["us-east-1"], region_urls=urls, signing_name="execute-api"))
        with mock.patch("session_service.client.Signer") as signer:
            client._default_signer(urls["eu-west-1"])
        signer.assert_called_once_with("execute-api", "eu-west-1")

    def test_without_that_regions_url_the_error_names_the_region(self):
        here = self.service(421)
        client, _ = client_for(here.url)
        with self.assertRaisesRegex(WrongRegion, "eu-west-1"):
            client.request("DELETE", "/sessions/k", repeatable=True)


class MergeTests(SimpleTestCase):
    def test_keys_only_one_side_changed_are_kept_from_that_side(self):
        base = {"a": 1, "b": 2, "gone": 0}
        ours = {"a": 1, "b": 3, "gone": 0, "new": "ours"}
        theirs = {"a": 5, "b": 2, "theirs": True}
        self.assertEqual(merge(base, ours, theirs), {"a": 5, "b": 3, "new": "ours", "theirs": True})

    def test_a_key_both_sides_changed_differently_is_a_conflict(self):
        with self.assertRaises(Conflict) as raised:
            merge({"a": 1}, {"a": 2}, {"a": 3})
        self.assertEqual(raised.exception.keys, ["a"])
        self.assertEqual(merge({"a": 1}, {"a": 2}, {"a": 2}), {"a": 2})
        with self.assertRaises(Conflict):
            merge({"a": 1}, {}, {"a": 3})
