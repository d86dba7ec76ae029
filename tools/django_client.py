#!/usr/bin/env python3
"""Tests of the Django client package (clients/django).

    django_client.py offline         its own tests that need no service: SigV4 against a
                                     recorded signature, the retry rules, the merge
    django_client.py service URL CODEC   Django's own SessionTestsMixin, and the race,
                                     expiry and revocation tests, against the service at
                                     URL, which runs SESSION_CODEC=CODEC

Django's SessionTestsMixin lives in the tests of Django's source archive, which is not
installed with Django: the pinned archive of the release this Python has installed is
downloaded once, its SHA-256 checked, and
its `tests/sessions_tests` kept under .tools/ (the module imports `.models`, so it runs
as the package `sessions_tests`, with a test database)."""

import hashlib
import importlib.metadata
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TESTS = os.path.join(ROOT, "clients", "django", "tests")

# The source archive of each Django release the client is tested with, by the version
# the running Python has installed: the LTS in .venv, the newest release in .venv/django6.
SDISTS = {
    "5.2.19": (
        "https://files.pythonhosted.org/packages/02/29/"
        "a487a108caa76430c8b616aa90a6d09cf431306112c14093e6f0a7454e17/django-5.2.19.tar.gz",
        "ad03d8abc51dbff95ebf34b27123cf0c26a3b62db7ba0cd520783686362533d1",
    ),
    "6.1.3": (
        "https://files.pythonhosted.org/packages/55/79/"
        "49a609ea76ec51404b482932e33f1e6858946b920232c11b11a25bea3032/django-6.1.3.tar.gz",
        "b5d2d9e35295065d13b1927b3f19a59bd119f737aa6299def14ccca1ae3c8c0d",
    ),
}


def sessions_tests():
    """The directory holding the package `sessions_tests` of the installed Django's
    release, fetched and checked once."""
    version = importlib.metadata.version("Django")
    if version not in SDISTS:
        sys.exit(f"django_client: Django {version} has no pinned source archive here")
    url, sha256 = SDISTS[version]
    cache = os.path.join(ROOT, ".tools", f"django-{version}-tests")
    if os.path.exists(os.path.join(cache, "sessions_tests", "tests.py")):
        return cache
    with urllib.request.urlopen(url, timeout=120) as answer:
        archive = answer.read()
    digest = hashlib.sha256(archive).hexdigest()
    if digest != sha256:
        sys.exit(f"django_client: {url} has SHA-256 {digest}, not the pinned {sha256}")
    prefix = f"django-{version}/tests/sessions_tests/"
    # Extracted beside the cache, then renamed into place: a cache is whole or absent.
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    staging = tempfile.mkdtemp(dir=os.path.dirname(cache))
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for member in tar.getmembers():
            name = member.name
            if member.isfile() and name.startswith(prefix) and "/" not in name[len(prefix):]:
                target = os.path.join(staging, "sessions_tests", name[len(prefix):])
                os.makedirs(os.path.dirname(target), exist_ok=True)
                with tar.extractfile(member) as source, open(target, "wb") as out:
                    out.write(source.read())
    shutil.rmtree(cache, ignore_errors=True)
    os.rename(staging, cache)
    return cache


def run(labels, env):
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "settings"
    sys.path[:0] = [TESTS, sessions_tests()]
    import django
    from django.test.runner import DiscoverRunner

    print(f"django_client: Django {django.get_version()} on Python {sys.version.split()[0]}",
          file=sys.stderr, flush=True)
    django.setup()
    failures = DiscoverRunner(verbosity=1, interactive=False).run_tests(labels)
    sys.exit(1 if failures else 0)


def main():
    if sys.argv[1:] == ["offline"]:
        run(["test_offline"], {})
    elif len(sys.argv) == 4 and sys.argv[1] == "service":
        run(["test_service"], {"SESSION_SERVICE_URL": sys.argv[2], "SESSION_SERVICE_CODEC": sys.argv[3]})
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
