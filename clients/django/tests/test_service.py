"""Against the service at SESSION_SERVICE_URL: Django's own SessionTestsMixin, then the
race and the user's sessions."""

import datetime
import os
import uuid
from unittest import mock

from django.contrib.sessions.backends.base import UpdateError
from django.conf import settings
from django.test import TestCase, override_settings
from django.utils import timezone
from sessions_tests.tests import SessionTestsMixin

from session_service import list_sessions, revoke_all_sessions, session_handle
from session_service.client import key_path
from session_service.session import MAX_TTL_SECONDS, Codec, SessionStore, client, valid_key


class ServiceSessionTests(SessionTestsMixin, TestCase):
    backend = SessionStore


class PreconditionFailures:
    """Counts the 412s the service answers, through the client's one pool."""

    def __enter__(self):
        self.count = 0
        original = client()._pool.request

        def counted(*args, **kwargs):
            answer = original(*args, **kwargs)
            self.count += answer.status == 412
            return answer

        self.patch = mock.patch.object(client()._pool, "request", side_effect=counted)
        self.patch.start()
        return self

    def __exit__(self, *exc):
        self.patch.stop()


class User:
    """What `principal_of` reads from a user: its primary key, as login stores it."""

    def __init__(self, pk):
        self.pk = pk
        self._meta = mock.Mock()
        self._meta.pk.value_to_string = lambda user: str(user.pk)


def logged_in(user_id):
    session = SessionStore()
    session["_auth_user_id"] = user_id
    session.save()
    return session


class RaceTests(TestCase):
    def test_two_requests_saving_one_session_lose_no_update(self):
        first = SessionStore()
        first["cart"] = ["book"]
        first.save()
        a, b = SessionStore(first.session_key), SessionStore(first.session_key)
        a.load(), b.load()
        a["theme"] = "dark"
        b["cart"] = ["book", "pen"]
        a.save()
        with PreconditionFailures() as failures:
            b.save()
        self.assertEqual(failures.count, 1)
        self.assertEqual(
            SessionStore(first.session_key).load(), {"cart": ["book", "pen"], "theme": "dark"}
        )

    def test_a_key_both_requests_changed_raises_update_error(self):
        first = SessionStore()
        first["step"] = 1
        first.save()
        a, b = SessionStore(first.session_key), SessionStore(first.session_key)
        a.load(), b.load()
        a["step"] = 2
        b["step"] = 3
        a.save()
        with self.assertRaises(UpdateError):
            b.save()
        self.assertEqual(SessionStore(first.session_key).load(), {"step": 2})

    def test_a_cycle_keeps_unsaved_changes_for_the_next_save(self):
        session = SessionStore()
        session["a"] = 1
        session.save()
        old = session.session_key
        session = SessionStore(old)
        session["b"] = 2
        session.modified = False
        session.cycle_key()
        # SessionMiddleware saves, and sends the new key's cookie, only when modified.
        self.assertIs(session.modified, True)
        session.save()
        self.assertFalse(session.exists(old))
        self.assertEqual(SessionStore(session.session_key).load(), {"a": 1, "b": 2})

    def test_a_cycle_after_another_requests_save_loses_nothing(self):
        first = SessionStore()
        first["a"] = 1
        first.save()
        mine, other = SessionStore(first.session_key), SessionStore(first.session_key)
        mine.get("a"), other.get("a")  # each request reads the session first
        other["theme"] = "dark"
        other.save()
        mine["user"] = "42"
        with PreconditionFailures() as failures:
            mine.cycle_key()
        mine.save()
        self.assertEqual(failures.count, 1)
        self.assertEqual(
            SessionStore(mine.session_key).load(), {"a": 1, "theme": "dark", "user": "42"}
        )

    def test_a_cycle_of_a_session_deleted_meanwhile_starts_an_empty_one(self):
        first = SessionStore()
        first["_auth_user_id"] = "7"
        first.save()
        mine = SessionStore(first.session_key)
        mine.get("_auth_user_id")  # the request reads the session, then it is deleted
        SessionStore(first.session_key).delete()
        mine.cycle_key()
        self.assertEqual(dict(mine.items()), {})
        self.assertFalse(mine.exists(first.session_key))
        mine.save()
        self.assertEqual(SessionStore(mine.session_key).load(), {})


class UserSessionTests(TestCase):
    def test_log_out_everywhere_spares_the_current_session_only(self):
        user = User(f"u-{uuid.uuid4().hex[:12]}")
        here, phone, laptop = (logged_in(user.pk) for _ in range(3))
        listed = {s["id"] for s in list_sessions(user)["sessions"]}
        self.assertEqual(
            listed, {session_handle(s.session_key) for s in (here, phone, laptop)}
        )
        self.assertEqual(revoke_all_sessions(user, except_current=here), 2)
        self.assertEqual(SessionStore(phone.session_key).load(), {})
        self.assertEqual(SessionStore(laptop.session_key).load(), {})
        # The spared session was written by the revocation; its next save still holds.
        here["after"] = True
        here.save()
        self.assertEqual(
            SessionStore(here.session_key).load(), {"_auth_user_id": user.pk, "after": True}
        )
        self.assertEqual(
            [s["id"] for s in list_sessions(user)["sessions"]], [session_handle(here.session_key)]
        )


def seconds_left(session):
    """What the service holds as the session's expiry, in seconds from now."""
    answer = client().request("GET", key_path(session.session_key), repeatable=True)
    expires = datetime.datetime.fromisoformat(answer.body["expires_at"].replace("Z", "+00:00"))
    return (expires - timezone.now()).total_seconds()


class ExpiryTests(TestCase):
    def saved(self, expiry):
        session = SessionStore()
        session["a"] = 1
        if expiry is not None:
            session.set_expiry(expiry)
        session.save()
        return session

    def test_djangos_expiry_is_the_services_expiry(self):
        cases = [
            (None, settings.SESSION_COOKIE_AGE),
            (0, settings.SESSION_COOKIE_AGE),
            (300, 300),
            (timezone.now() + datetime.timedelta(hours=2), 7200),
        ]
        for expiry, seconds in cases:
            with self.subTest(expiry=expiry):
                self.assertAlmostEqual(seconds_left(self.saved(expiry)), seconds, delta=10)

    def test_the_first_create_of_a_process_gets_its_expiry_before_the_codec_is_known(self):
        with mock.patch.object(Codec, "known", None):
            session = self.saved(300)
        self.assertAlmostEqual(seconds_left(session), 300, delta=10)
        self.assertEqual(SessionStore(session.session_key).load(), {"a": 1, "_session_expiry": 300})

    def test_a_save_with_an_expiry_already_past_removes_the_session(self):
        session = self.saved(None)
        session.set_expiry(-10)
        session.save()
        self.assertFalse(session.exists(session.session_key))
        self.assertEqual(SessionStore(session.session_key).load(), {})

    def test_a_cookie_age_the_service_does_not_share_is_sent_or_warned_about(self):
        with override_settings(SESSION_COOKIE_AGE=3600), mock.patch.object(Codec, "warned", False):
            if Codec.known == "json":
                self.assertAlmostEqual(seconds_left(self.saved(None)), 3600, delta=10)
            else:
                with self.assertLogs("session_service", "WARNING"):
                    self.saved(None)


class AgreementTests(TestCase):
    """The client's copies of the API's rules, held to the API."""

    def test_the_codec_is_told_apart_by_the_etag(self):
        SessionStore().save()
        self.assertEqual(Codec.known, os.environ["SESSION_SERVICE_CODEC"])

    def test_the_key_rule_and_the_longest_ttl_are_the_apis(self):
        session = SessionStore()
        session.save()
        self.assertTrue(valid_key(session.session_key))
        for key in ("a" * 31, "a" * 33, "A" * 32):
            with self.subTest(key=key):
                self.assertEqual(client().request("GET", key_path(key), repeatable=True).status, 400)
        for ttl, status in ((MAX_TTL_SECONDS, 201), (MAX_TTL_SECONDS + 1, 400)):
            with self.subTest(ttl=ttl):
                answer = client().request(
                    "POST", "/sessions", body={"data": {}, "ttl_seconds": ttl}, repeatable=False
                )
                self.assertEqual(answer.status, status)
