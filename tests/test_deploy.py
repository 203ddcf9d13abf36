"""deploy/: every manifest parses, runs the right command with flags the CLI accepts, and is hardened."""

from __future__ import annotations

import configparser
import os
import re

import yaml
from conftest import REPO

from scanner.cli import build_parser
from scanner.daemon import load_config

DEPLOY = REPO / "deploy"


def _containers(doc: dict) -> list[dict]:
    spec = doc["spec"]
    if doc["kind"] == "CronJob":
        spec = spec["jobTemplate"]["spec"]
    return spec["template"]["spec"]["containers"]


def _vecleak(path: str) -> tuple[dict, dict]:
    doc = yaml.safe_load((DEPLOY / "kubernetes" / path).read_text())
    pod = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    (c,) = [c for c in _containers(doc) if c["name"] == "vecleak"]
    return pod["template"]["spec"], c


def _parses(args: list[str]) -> None:
    ns = build_parser().parse_args(args)  # exits 2 on an unknown flag, failing the test
    assert ns.func


def test_sidecar_shares_an_emptydir_and_runs_watch():
    pod, c = _vecleak("sidecar.yaml")
    assert c["args"][0] == "watch" and "--state" in c["args"] and "--output" in c["args"]
    _parses(c["args"])
    volumes = {v["name"]: v for v in pod["volumes"]}
    app = next(x for x in pod["containers"] if x["name"] != "vecleak")
    shared = {m["name"] for m in app["volumeMounts"]} & {m["name"] for m in c["volumeMounts"]}
    assert shared and all("emptyDir" in volumes[name] for name in shared)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False


def test_daemonset_follows_node_logs():
    pod, c = _vecleak("daemonset.yaml")
    assert c["args"][:2] == ["watch", "/var/log/containers/*.log"]
    _parses(c["args"])
    assert any(v.get("hostPath", {}).get("path") == "/var/log" for v in pod["volumes"])
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_cronjob_runs_scan():
    doc = yaml.safe_load((DEPLOY / "kubernetes" / "cronjob.yaml").read_text())
    assert doc["kind"] == "CronJob" and doc["spec"]["schedule"]
    pod, c = _vecleak("cronjob.yaml")
    assert c["args"][0] == "scan" and "--fail-on" in c["args"]
    _parses(c["args"])
    assert doc["spec"]["concurrencyPolicy"] == "Forbid"  # one run at a time per state file
    # The state lives on its own writable volume (the root filesystem is read-only), in a folder
    # that also holds SQLite's -wal and -shm files.
    state = c["args"][c["args"].index("--state") + 1]
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    folder = os.path.dirname(state)
    assert folder in mounts and not mounts[folder].get("readOnly", False)
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "persistentVolumeClaim" in volumes[mounts[folder]["name"]]


def test_systemd_unit_is_hardened_and_runs_watch():
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str
    text = (DEPLOY / "systemd" / "vecleak-watch.service").read_text()
    unit.read_string(text)
    service = unit["Service"]
    args = service["ExecStart"].split()[1:]
    assert args[0] == "watch"
    _parses(args)
    for key, value in {
        "NoNewPrivileges": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "DynamicUser": "yes",
        "UMask": "0077",
        "CapabilityBoundingSet": "",
    }.items():
        assert service.get(key) == value, key
    assert "-HUP" in service["ExecReload"] and service["KillSignal"] == "SIGTERM"


def test_containerfile_runs_as_non_root():
    text = (DEPLOY / "Containerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", text, re.M)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["vecleak"\]', text, re.M)


def test_example_config_loads():
    cfg = load_config(str(DEPLOY / "vecleak.yml"), {}, env={})
    assert cfg.paths and cfg.output[0].startswith("jsonl:")
