#!/usr/bin/env bash
# Start a real OpenSearch 2.19 (with the k-NN plugin) on 127.0.0.1 for vecleak's tests and
# `make opensearch-dev`.
#
# Why this way: OpenSearch ships in no PyPI/npm/Debian package and its tarball is a vendor download.
# Every module jar, and the k-NN plugin zip, is on Maven Central, so a tiny Java launcher
# (tests/servers/opensearch-launcher, built by Maven into .servers/) runs an embedded node with those
# modules as classpath plugins. An embedded node has no root check, so this works as root too.
# k-NN: only the pure-Java Lucene engine works here (the Central zip has no native libraries), so map
# knn_vector fields with "engine": "lucene".
#
# Idempotent: a server already answering on the port is left alone; the build is cached.
# Env: OS_PORT (9201), OS_HEAP (768m), JAVA_HOME, VECLEAK_SERVERS_DIR (<repo>/.servers),
#      OS_START_TIMEOUT (seconds, 120).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
PORT="${OS_PORT:-9201}"
HEAP="${OS_HEAP:-768m}"
CACHE="${VECLEAK_SERVERS_DIR:-$ROOT/.servers}"
TIMEOUT="${OS_START_TIMEOUT:-120}"
URL="http://127.0.0.1:${PORT}"
SRC="$ROOT/tests/servers/opensearch-launcher"
BUILD="$CACHE/opensearch-launcher"

log() { echo "start-opensearch: $*" >&2; }

if curl -fsS -m 2 "${URL}/_cluster/health" >/dev/null 2>&1; then
  log "already running at ${URL}"
  exit 0
fi

JAVA="java"
[[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && JAVA="$JAVA_HOME/bin/java"
command -v "$JAVA" >/dev/null || { log "java not found"; exit 2; }
command -v mvn >/dev/null || { log "mvn not found"; exit 2; }

mkdir -p "$CACHE"
# Rebuild when the launcher sources or pom are newer than the last build stamp.
STAMP="$BUILD/.built"
if [[ ! -f "$STAMP" ]] || [[ -n "$(find "$SRC" -newer "$STAMP" -type f -print -quit)" ]]; then
  log "building the launcher with Maven (first run downloads OpenSearch jars from Maven Central)"
  mvn -q -B -f "$SRC/pom.xml" "-Dservers.dir=$CACHE" package >&2
  touch "$STAMP"
fi

HOME_DIR="$CACHE/os-${PORT}"
mkdir -p "$HOME_DIR"
log "starting OpenSearch on ${URL} (log: ${HOME_DIR}/stdout.log)"
# setsid: the server must outlive this script and not take signals meant for the caller's group.
setsid "$JAVA" "-Xms${HEAP}" "-Xmx${HEAP}" \
  -Dopensearch.set.netty.runtime.available.processors=false \
  -Djava.io.tmpdir="$HOME_DIR" \
  -cp "$BUILD/classes:$BUILD/lib/*:$BUILD/knn/*" \
  vecleak.servers.OpenSearchLauncher "$PORT" "$HOME_DIR" \
  >"$HOME_DIR/stdout.log" 2>&1 </dev/null &
echo $! >"$HOME_DIR/pid"

for _ in $(seq "$TIMEOUT"); do
  if curl -fsS -m 2 "${URL}/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
    log "ready at ${URL}"
    exit 0
  fi
  if ! kill -0 "$(cat "$HOME_DIR/pid")" 2>/dev/null; then
    log "server exited; last log lines:"; tail -n 30 "$HOME_DIR/stdout.log" >&2; exit 1
  fi
  sleep 1
done
log "not ready after ${TIMEOUT}s; last log lines:"; tail -n 30 "$HOME_DIR/stdout.log" >&2
exit 1
