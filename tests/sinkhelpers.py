"""Real receivers for sink tests: a stdlib HTTP server in a thread, rsyslogd in the foreground."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import socket
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
from conftest import unit_vectors

from scanner.engine import Engine
from scanner.model import Alert, Record, SourceRef
from scanner.pipeline import Pipeline
from scanner.rules import load_rules


def make_alerts(n: int, dim: int = 384, seed: int = 0) -> list[Alert]:
    """Real alerts: distinct vectors printed into a log record, through the real pipeline and rule pack."""
    vecs = unit_vectors(n, dim, seed=seed)
    text = "".join(
        f"2026-11-26 DEBUG i={i} query_embedding={np.round(v, 6).tolist()}\n" for i, v in enumerate(vecs)
    )
    src = SourceRef("file", "/var/log/app/app.log", "file:/var/log/app/app.log")
    engine = Engine(Pipeline(), load_rules(), [])
    engine.feed(Record(text.encode(), src))
    log_alerts = [a for a in engine.sent if a.rule_id == "vecleak.log.embedding"]
    assert len(log_alerts) == n, [a.rule_id for a in engine.sent]
    return log_alerts


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Receiver:
    """An HTTP endpoint that records (path, headers, body) and answers ``status``."""

    def __init__(self, port: int = 0, status: int = 200) -> None:
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append((self.path, dict(self.headers.items()), body))
                self.send_response(outer.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: object) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- rsyslog ---------------------------------------------------------------------------------------


def rsyslogd() -> str | None:
    """The rsyslogd binary, installing Debian's rsyslog + rsyslog-gnutls when root and apt allow."""
    found = shutil.which("rsyslogd") or (os.path.exists("/usr/sbin/rsyslogd") and "/usr/sbin/rsyslogd")
    gnutls = any(
        Path(p).glob("rsyslog/lmnsd_gtls.so")
        for p in ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib")
    )
    if found and gnutls:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        cmd = ["apt-get", "install", "-y", "-q", "rsyslog", "rsyslog-gnutls"]
        if subprocess.run(cmd, env=env, capture_output=True, timeout=600).returncode != 0:
            subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True, timeout=600)
            subprocess.run(cmd, env=env, capture_output=True, timeout=600)
    return shutil.which("rsyslogd") or (
        "/usr/sbin/rsyslogd" if os.path.exists("/usr/sbin/rsyslogd") else None
    )


def make_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1/localhost, with ``cryptography``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "vecleak test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    paths = (directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return paths


class Rsyslog:
    """rsyslogd in the foreground on loopback, writing each raw message it receives to ``out``."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        udp: int = 0,
        tcp: int = 0,
        tls: tuple[int, Path, Path, Path] | None = None,
    ):
        self.out = directory / "received.log"
        conf = directory / "rsyslog.conf"
        lines = [f'global(workDirectory="{directory}")']
        if tls:
            port, ca, cert, key = tls
            lines[0] = (
                f'global(workDirectory="{directory}" DefaultNetstreamDriverCAFile="{ca}" '
                f'DefaultNetstreamDriverCertFile="{cert}" DefaultNetstreamDriverKeyFile="{key}")'
            )
            lines += [
                'module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="anon")',
                f'input(type="imtcp" address="127.0.0.1" port="{port}")',
            ]
            self.probe = port
        else:
            lines += ['module(load="imudp")', 'module(load="imtcp")']
            lines += [
                f'input(type="imudp" address="127.0.0.1" port="{udp}")',
                f'input(type="imtcp" address="127.0.0.1" port="{tcp}")',
            ]
            self.probe = tcp
        lines += [
            'template(name="raw" type="string" string="%rawmsg%\\n")',
            f'action(type="omfile" file="{self.out}" template="raw" flushOnTXEnd="on" asyncWriting="off")',
        ]
        conf.write_text("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(
            [binary, "-n", "-f", str(conf), "-i", str(directory / "rsyslogd.pid")],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rsyslogd exited: {self.proc.stdout.read().decode(errors='replace')}")
            try:
                socket.create_connection(("127.0.0.1", self.probe), timeout=0.5).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("rsyslogd did not start listening")

    def lines(self, expect: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        got: list[str] = []
        while time.monotonic() < deadline:
            if self.out.exists():
                text = self.out.read_text(errors="replace")
                # Only whole lines: rsyslog may have written part of the next one so far.
                got = [x for x in text[: text.rfind("\n") + 1].splitlines() if x.strip()]
                if len(got) >= expect:
                    break
            time.sleep(0.1)
        return got

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
