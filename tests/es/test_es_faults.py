"""Faults between vecleak and a real server: throttling, auth failures, TLS. A small HTTP(S) proxy in
front of the real Elasticsearch/OpenSearch injects them; everything it passes through is real."""

from __future__ import annotations

import http.server
import shutil
import ssl
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from scanner.sources.elasticsearch import Cluster, EsAuthError, EsError, credentials_from_env
from tests.conftest import run_cli
from tests.es.docs import bulk, log_docs, plant_log_docs
from tests.es.test_es_scan import located, walked


class _Proxy(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, upstream: str, fault: Callable[[str, str, dict], int | None]) -> None:
        self.upstream = upstream
        self.fault = fault
        self.seen: list[tuple[str, str, int]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Proxy

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def _any(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0)) or None
        injected = self.server.fault(self.command, self.path, dict(self.headers))
        if injected:
            self.server.seen.append((self.command, self.path, injected))
            payload = (
                b'{"error":{"root_cause":[{"type":"injected","reason":"by the test proxy"}],"type":"injected","reason":"by the test proxy"},"status":%d}'
                % injected
            )
            self.send_response(injected)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")
        }
        req = urllib.request.Request(
            self.server.upstream + self.path, data=body, method=self.command, headers=headers
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, rheaders, data = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as exc:
            status, rheaders, data = exc.code, exc.headers, exc.read()
        self.server.seen.append((self.command, self.path, status))
        self.send_response(status)
        for k, v in rheaders.items():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _any


def _serve(proxy: _Proxy) -> Iterator[_Proxy]:
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.shutdown()
        proxy.server_close()


@pytest.fixture
def indexed(server: str, uid: str) -> tuple[str, str, set]:
    index = f"logs-fault-{uid}"
    plants, planted = plant_log_docs(0, seed=51)
    bulk(server, index, log_docs(60, seed=2) + plants)
    return server, index, {(index, d, f) for d, f in planted}


def test_throttling_is_retried_with_backoff(indexed: tuple[str, str, set]) -> None:
    server, index, expected = indexed
    budget = {"n": 3}

    def throttle(method: str, path: str, headers: dict) -> int | None:
        if "_search" in path and budget["n"] > 0:
            budget["n"] -= 1
            return 429 if budget["n"] % 2 else 503
        return None

    for proxy in _serve(_Proxy(server, throttle)):
        url = f"http://127.0.0.1:{proxy.server_port}"
        proc = run_cli("es", "scan", "--url", url, "--index", index, "--format", "jsonl", "--page-size", "20")
        assert proc.returncode == 3, proc.stderr.decode()
        assert walked(proc.stderr) == 63
        assert located(proc.stdout) == expected
        assert sorted(s for _, _, s in proxy.seen if s >= 429) == [429, 503, 503]


def test_auth_failure_is_a_clear_error(indexed: tuple[str, str, set], tmp_path: Path) -> None:
    server, index, _ = indexed

    def require_key(method: str, path: str, headers: dict) -> int | None:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        return None if auth == "ApiKey right-key" else 401

    key_file = tmp_path / "api-key"
    key_file.write_text("right-key\n")
    for proxy in _serve(_Proxy(server, require_key)):
        url = f"http://127.0.0.1:{proxy.server_port}"
        bad = run_cli(
            "es",
            "scan",
            "--url",
            url,
            "--index",
            index,
            "--format",
            "jsonl",
            env={"VECLEAK_ES_API_KEY": "wrong"},
        )
        assert bad.returncode == 1
        assert b"authentication failed" in bad.stderr and b"VECLEAK_ES_API_KEY" in bad.stderr
        assert b"wrong" not in bad.stderr  # the secret is never echoed
        good = run_cli(
            "es",
            "scan",
            "--url",
            url,
            "--index",
            index,
            "--format",
            "jsonl",
            env={"VECLEAK_ES_API_KEY_FILE": str(key_file)},
        )
        assert good.returncode == 3, good.stderr.decode()
        assert walked(good.stderr) == 63


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl CLI needed to make a test certificate")
def test_tls_is_verified_and_ca_cert_is_honoured(indexed: tuple[str, str, set], tmp_path: Path) -> None:
    server, index, expected = indexed
    cert, key = tmp_path / "ca.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    proxy = _Proxy(server, lambda *_: None)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    proxy.socket = ctx.wrap_socket(proxy.socket, server_side=True)
    for p in _serve(proxy):
        url = f"https://127.0.0.1:{p.server_port}"
        with pytest.raises(EsError, match="TLS verification failed"):
            Cluster.connect(url, retries=0)
        proc = run_cli(
            "es", "scan", "--url", url, "--index", index, "--format", "jsonl", "--ca-cert", str(cert)
        )
        assert proc.returncode == 3, proc.stderr.decode()
        assert located(proc.stdout) == expected


def test_credentials_come_from_env_or_files(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_text("s3cret\n")
    assert credentials_from_env({"VECLEAK_ES_USERNAME": "scanner", "VECLEAK_ES_PASSWORD_FILE": str(pw)}) == {
        "basic_auth": ("scanner", "s3cret")
    }
    assert credentials_from_env({"VECLEAK_ES_API_KEY": "k", "VECLEAK_ES_USERNAME": "u"}) == {"api_key": "k"}
    assert credentials_from_env({}) == {}
    with pytest.raises(EsError, match="VECLEAK_ES_PASSWORD"):
        credentials_from_env({"VECLEAK_ES_USERNAME": "u"})
    with pytest.raises(EsError, match="VECLEAK_ES_API_KEY_FILE"):
        credentials_from_env({"VECLEAK_ES_API_KEY_FILE": str(tmp_path / "missing")})
    assert issubclass(EsAuthError, EsError)


def test_cronjob_example_matches_the_cli() -> None:
    """The shipped CronJob must parse and use only options `vecleak es scan` accepts."""
    import yaml

    from scanner.cli import build_parser

    docs = list(
        yaml.safe_load_all((Path(__file__).parents[2] / "deploy/kubernetes/cronjob-es-scan.yaml").read_text())
    )
    job = next(d for d in docs if d["kind"] == "CronJob")["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed"
    args = job["template"]["spec"]["containers"][0]["args"]
    assert f"--slices={job['completions']}" in args
    parsed = build_parser().parse_args([a.replace("$(JOB_COMPLETION_INDEX)", "0") for a in args])
    assert parsed.state == "/state/es-scan-0.db" and parsed.index == "logs-*,rag-*"
