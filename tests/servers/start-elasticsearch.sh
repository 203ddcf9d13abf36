#!/usr/bin/env bash
# Start a real Elasticsearch 9.x on 127.0.0.1 for vecleak's tests and `make es-dev`.
#
# Why this way: Elasticsearch ships in no PyPI/npm/Debian package, and this project may reach only
# package registries. Maven Central carries the official "integ-test-zip" distribution (a real server
# with only the transport + x-pack core/security modules, no bundled JDK), so we fetch it with Maven,
# unpack it into the git-ignored .servers/ cache, and run bin/elasticsearch with security off.
# Elasticsearch refuses to run as root (CI runs as root), so as root we create a system user for it.
#
# Idempotent: a server already answering on the port is left alone; downloads are cached.
# Env: ES_PORT (9200), ES_VERSION (9.2.4), ES_HEAP (768m), ES_JAVA_HOME (a JDK 21+; found if unset),
#      VECLEAK_SERVERS_DIR (<repo>/.servers), ES_START_TIMEOUT (seconds, 120).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PORT="${ES_PORT:-9200}"
VERSION="${ES_VERSION:-9.2.4}"
HEAP="${ES_HEAP:-768m}"
TIMEOUT="${ES_START_TIMEOUT:-120}"
RUN_USER="vecleak-es"
URL="http://127.0.0.1:${PORT}"

exit_if_running "$URL"

# A JDK 21+ is needed by 9.x; prefer an explicit one, then any JDK >= 21 under /usr/lib/jvm.
find_java() {
  local cand ver
  for cand in "${ES_JAVA_HOME:-}" "${JAVA_HOME:-}" /usr/lib/jvm/*; do
    [[ -n "$cand" && -x "$cand/bin/java" ]] || continue
    ver="$("$cand/bin/java" -XshowSettings:properties -version 2>&1 | awk -F= '/java.specification.version/ {gsub(/ /,"",$2); print $2}')"
    if [[ "${ver%%.*}" -ge 21 ]]; then echo "$cand"; return 0; fi
  done
  return 1
}
JDK="$(find_java)" || { log "no JDK 21+ found (set ES_JAVA_HOME)"; exit 2; }
require mvn

mkdir -p "$CACHE"
HOME_DIR="$CACHE/elasticsearch-${VERSION}"
if [[ ! -x "$HOME_DIR/bin/elasticsearch" ]]; then
  ZIP="$HOME/.m2/repository/org/elasticsearch/distribution/integ-test-zip/elasticsearch/${VERSION}/elasticsearch-${VERSION}.zip"
  if [[ ! -f "$ZIP" ]]; then
    log "fetching org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip from Maven Central"
    mvn -q -B dependency:get -Dtransitive=false \
      "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:${VERSION}:zip" >&2
  fi
  tmp="$(mktemp -d "$CACHE/.unzip.XXXXXX")"
  unzip -q "$ZIP" -d "$tmp"
  rm -rf "$HOME_DIR"
  mv "$tmp/elasticsearch-${VERSION}" "$HOME_DIR"
  rmdir "$tmp"
fi

STATE="$CACHE/es-${PORT}" # pid and stdout.log: where stop-servers.sh and the tests' teardown look
DATA="$STATE"
mkdir -p "$STATE"
RUN=()
if [[ "$(id -u)" == "0" ]]; then
  if ! id "$RUN_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$RUN_USER"
  fi
  if ! runuser -u "$RUN_USER" -- test -x "$CACHE"; then
    # A folder above the cache is closed to other users (a clone under /root, or in a mktemp
    # folder): the server's tree and data go where its user can reach them.
    PLACE="/var/tmp/vecleak-es-$(printf '%s' "$CACHE" | sha256sum | cut -c1-12)"
    mkdir -p "$PLACE"
    chmod 0755 "$PLACE"
    if [[ ! -x "$PLACE/elasticsearch-${VERSION}/bin/elasticsearch" ]]; then
      rm -rf "$PLACE/elasticsearch-${VERSION}"
      cp -a "$HOME_DIR" "$PLACE/"
    fi
    HOME_DIR="$PLACE/elasticsearch-${VERSION}"
    DATA="$PLACE/es-${PORT}"
    log "$RUN_USER cannot reach $CACHE; running Elasticsearch from $PLACE"
  fi
  mkdir -p "$DATA/data" "$DATA/logs" "$DATA/tmp"
  # bin/elasticsearch writes keystore/config files and its data; the user must own both trees.
  chown -R "$RUN_USER" "$HOME_DIR" "$DATA"
  RUN=(runuser -u "$RUN_USER" --)
else
  mkdir -p "$DATA/data" "$DATA/logs" "$DATA/tmp"
fi

log "starting Elasticsearch ${VERSION} on ${URL} (java: ${JDK}; log: ${STATE}/stdout.log)"
ES_JAVA_HOME="$JDK" ES_TMPDIR="$DATA/tmp" ES_JAVA_OPTS="-Xms${HEAP} -Xmx${HEAP}" \
  start_detached "$STATE" "${RUN[@]}" "$HOME_DIR/bin/elasticsearch" \
    -E cluster.name=vecleak-test-es -E node.name=vecleak-es \
    -E discovery.type=single-node -E network.host=127.0.0.1 \
    -E http.port="$PORT" -E transport.port="$((PORT + 100))" \
    -E path.data="$DATA/data" -E path.logs="$DATA/logs" \
    -E xpack.security.enabled=false \
    -E cluster.routing.allocation.disk.threshold_enabled=false

wait_ready "$URL" "$STATE" "$TIMEOUT"
