# Shared by start-elasticsearch.sh, start-opensearch.sh and stop-servers.sh (sourced, not run): the
# cache path, logging and the start/wait steps both servers take, so that the scripts cannot drift
# apart (stop-servers.sh must look where the start scripts write).
# Env: VECLEAK_SERVERS_DIR (<repo>/.servers).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CACHE="${VECLEAK_SERVERS_DIR:-$ROOT/.servers}"

log() { echo "$(basename "$0" .sh): $*" >&2; }

# Idempotence: a server already answering at URL is left alone.
exit_if_running() { # URL
  if curl -fsS -m 2 "$1/_cluster/health" >/dev/null 2>&1; then
    log "already running at $1"
    exit 0
  fi
}

require() { # COMMAND
  command -v "$1" >/dev/null || { log "$1 not found"; exit 2; }
}

# Run COMMAND detached with DIR/stdout.log and DIR/pid. setsid: the server must outlive this script
# and not take signals meant for the caller's group; stop-servers.sh signals that group.
start_detached() { # DIR COMMAND...
  local dir="$1"
  shift
  setsid "$@" >"$dir/stdout.log" 2>&1 </dev/null &
  echo $! >"$dir/pid"
}

# Wait up to TIMEOUT seconds for a yellow cluster at URL; on failure show the server's last log lines.
wait_ready() { # URL DIR TIMEOUT
  local url="$1" dir="$2" timeout="$3"
  for _ in $(seq "$timeout"); do
    if curl -fsS -m 2 "${url}/_cluster/health?wait_for_status=yellow&timeout=1s" >/dev/null 2>&1; then
      log "ready at ${url}"
      return 0
    fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then
      log "server exited; last log lines:"
      tail -n 30 "$dir/stdout.log" >&2
      return 1
    fi
    sleep 1
  done
  log "not ready after ${timeout}s; last log lines:"
  tail -n 30 "$dir/stdout.log" >&2
  return 1
}
