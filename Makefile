# pufa — every target sets itself up from nothing (a Python 3.11+ interpreter is all it needs).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
PO     := $(wildcard locales/*/LC_MESSAGES/*.po)
MO     := locales/.compiled
PYTEST_ARGS ?=

.PHONY: run test lint bench i18n lock clean browser wrk reliability bytecode

$(STAMP): pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "pufa needs Python 3.11 or newer"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -c requirements.lock \
		--config-settings editable_mode=compat -e '.[dev]'
	touch $(STAMP)

$(MO): $(PO) $(STAMP)
	$(BIN)/python tools/i18n.py compile
	touch $(MO)

## make bytecode: compile pufa's modules ahead, so that no process compiles them at start-up
## (about 0.35 s a start where PYTHONDONTWRITEBYTECODE is set: every CLI call, the writer process)
bytecode: $(STAMP)
	$(BIN)/python -m compileall -q bot core surveys storage bench tools tests >/dev/null

## make run: set up, load the catalog and sample data, serve on http://127.0.0.1:8080
run: $(STAMP) $(MO) bytecode
	$(BIN)/pufa seed --demo
	PUFA_LOG_FORMAT=$${PUFA_LOG_FORMAT:-text} exec $(BIN)/pufa serve

## make browser: install Debian's chromium (and a CJK font) for the headless browser test, once
browser:
	@if [ -x /usr/bin/chromium ]; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi; \
	  echo "installing chromium with apt-get"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >/dev/null && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    chromium fonts-wqy-microhei </dev/null >/dev/null \
	  || echo "could not install chromium; the browser test fails under CI=true"; \
	else echo "no apt-get: install chromium by hand for the browser test"; fi

## make test: set up and run the whole suite (PUFA_TEST_POSTGRES_URL selects PostgreSQL)
test: $(STAMP) $(MO) browser lint bytecode
	$(BIN)/pytest -q $(PYTEST_ARGS)

## make reliability: the reliability suite at full scale (thousands of generated API requests,
## hostile input on every entry point, SIGKILL under load, property tests with more examples)
reliability: $(STAMP) $(MO) bytecode
	PUFA_RELIABILITY=full $(BIN)/pytest -q -p no:cacheprovider $(PYTEST_ARGS) \
		tests/reliability tests/unit/test_properties.py tests/rota/test_plan.py \
		tests/outbox/test_serve.py::test_serve_killed_mid_drain_delivers_everything_at_most_the_one_in_flight_twice

## make lint: ruff, the translation check, the architecture contracts and the type check
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python tools/i18n.py check
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy

## make i18n: extract messages, merge them into every catalog (one per feature), compile
i18n: $(STAMP)
	$(BIN)/python tools/i18n.py update

## make wrk: install Debian's wrk (the HTTP load generator of the benchmarks), once
wrk:
	@if command -v wrk >/dev/null 2>&1; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo -n"; fi; \
	  echo "installing wrk with apt-get"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >/dev/null && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
	    wrk </dev/null >/dev/null \
	  || echo "could not install wrk; the wrk-driven benchmarks are skipped"; \
	else echo "no apt-get: install wrk by hand for the benchmarks"; fi

## make bench: every benchmark next to its baseline, one table, bench/results.json (~12 min)
bench: $(STAMP) $(MO) wrk bytecode
	$(BIN)/python -m bench

## make lock: re-pin every dependency after changing pyproject.toml
lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet '.[dev]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^pufa' > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info $(MO) locales/*/LC_MESSAGES/*.mo
