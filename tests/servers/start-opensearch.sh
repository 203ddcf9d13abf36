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
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${OS_PORT:-9201}"
HEAP="${OS_HEAP:-768m}"
TIMEOUT="${OS_START_TIMEOUT:-120}"
URL="http://127.0.0.1:${PORT}"
SRC="$ROOT/tests/servers/opensearch-launcher"
BUILD="$CACHE/opensearch-launcher"

exit_if_running "$URL"

JAVA="java"
[[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]] && JAVA="$JAVA_HOME/bin/java"
require "$JAVA"
require mvn

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
start_detached "$HOME_DIR" "$JAVA" "-Xms${HEAP}" "-Xmx${HEAP}" \
  -Dopensearch.set.netty.runtime.available.processors=false \
  -Djava.io.tmpdir="$HOME_DIR" \
  -cp "$BUILD/classes:$BUILD/lib/*:$BUILD/knn/*" \
  vecleak.servers.OpenSearchLauncher "$PORT" "$HOME_DIR"

wait_ready "$URL" "$HOME_DIR" "$TIMEOUT"
