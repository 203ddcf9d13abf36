"""Session fixtures that hand tests a real Elasticsearch and a real OpenSearch.

A server already listening at VECLEAK_TEST_ES_URL / VECLEAK_TEST_OS_URL (default 127.0.0.1:9200 and
:9201; `.ci/run` and `make es-dev` start them) is used as is. Otherwise the fixture runs the start
script under tests/servers/ and stops that server at the end of the session. In CI (CI=true) a server
that cannot start fails the tests; on a laptop without Java or Maven they skip, saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

REPO = Path(__file__).resolve().parents[2]
SERVERS = REPO / "tests" / "servers"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _up(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_cluster/health", timeout=3) as resp:
            return resp.status == 200
    except OSError:
        return False


def _unavailable(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: a missing test server is a failure, not a skip)")
    pytest.skip(message)


def _server(env_name: str, default: str, script: str, port_env: str) -> Iterator[str]:
    url = os.environ.get(env_name, default).rstrip("/")
    if _up(url):
        yield url
        return
    host = urlparse(url).hostname
    if host not in ("127.0.0.1", "localhost"):
        _unavailable(f"{env_name}={url} is not reachable")
    missing = [tool for tool in ("java", "mvn", "curl") if shutil.which(tool) is None]
    if missing:
        _unavailable(f"cannot start a test server for {url}: {', '.join(missing)} not installed")
    env = {**os.environ, port_env: str(urlparse(url).port or 9200)}
    proc = subprocess.run([str(SERVERS / script)], env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0 or not _up(url):
        _unavailable(f"{script} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    try:
        yield url
    finally:
        if not os.environ.get("VECLEAK_TEST_KEEP_SERVERS"):
            port = urlparse(url).port
            servers_dir = Path(os.environ.get("VECLEAK_SERVERS_DIR") or REPO / ".servers")
            pidfile = servers_dir / f"{'es' if port_env == 'ES_PORT' else 'os'}-{port}" / "pid"
            if pidfile.exists():
                pid = int(pidfile.read_text().strip())
                # The start script ran the server under setsid: its process group holds the JVM(s).
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
                pidfile.unlink()


@pytest.fixture(scope="session")
def es_url() -> Iterator[str]:
    yield from _server("VECLEAK_TEST_ES_URL", "http://127.0.0.1:9200", "start-elasticsearch.sh", "ES_PORT")


@pytest.fixture(scope="session")
def os_url() -> Iterator[str]:
    yield from _server("VECLEAK_TEST_OS_URL", "http://127.0.0.1:9201", "start-opensearch.sh", "OS_PORT")


@pytest.fixture(params=["elasticsearch", "opensearch"])
def server(request: pytest.FixtureRequest) -> str:
    """Each test that takes ``server`` runs once against each product."""
    return request.getfixturevalue("es_url" if request.param == "elasticsearch" else "os_url")


@pytest.fixture
def uid() -> str:
    """A fresh index-name suffix, so reruns against a long-lived server never collide."""
    return uuid.uuid4().hex[:10]
