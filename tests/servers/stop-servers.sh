#!/usr/bin/env bash
# Stop the servers started by start-elasticsearch.sh / start-opensearch.sh (by their pid files only).
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
for pidfile in "$CACHE"/es-*/pid "$CACHE"/os-*/pid; do
  [[ -f "$pidfile" ]] || continue
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    # setsid made the server its own process group: signal the group so the JVM child goes too.
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid"
    echo "stop-servers: stopped $pid ($pidfile)"
  fi
  rm -f "$pidfile"
done
