# One command to run, one to test. Both build .venv from scratch on a fresh machine.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install sysdeps ingress bench docs clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip setuptools wheel

# `sigma warm` compiles every numba kernel once into the machine's cache (~/.cache/sigma/numba),
# so no start, fresh SIGMA_HOME, Ray worker or test run compiles again.
# constraints.txt pins the versions the suite was last run with, so a fresh machine installs
# the same set quickly (new releases upstream cannot send pip's resolver backtracking).
# The kernels' cache is keyed by a digest of compute/ (cluster.config.kernels_digest): after a
# change there, the next make run / make test compiles them again into the new cache.
$(STAMP): $(BIN)/python pyproject.toml constraints.txt $(wildcard compute/*.py compute/*/*.py)
	$(BIN)/pip install -c constraints.txt -e '.[test]'
	$(BIN)/sigma warm
	touch $(STAMP)

install: $(STAMP)

# HAProxy for Ray Serve's faster HTTP ingress, opt-in (SIGMA_INGRESS=haproxy; docs/deploy.md):
# Ray's own wheel ships a binary; this installs Debian's when missing and we are root.
ingress:
	@command -v haproxy >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq haproxy; } || echo "haproxy not installed: Ray Serve's Python proxy will serve HTTP (apt-get install haproxy for the faster ingress)"

run: $(STAMP)
	$(BIN)/sigma serve --demo

# The suite reads rendered reports back with poppler (pdftotext, pdftoppm, pdfimages): a Debian
# package, installed here when missing (the CI runs as root).
# The dashboard's browser tests (tests/serve_app/test_dashboard_browser.py) drive Debian's
# chromium through its chromedriver with Selenium: no browser download step.
sysdeps:
	@command -v pdftoppm >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq poppler-utils; }
	@{ command -v chromium >/dev/null 2>&1 && test -x /usr/bin/chromedriver; } || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core; }

test: $(STAMP) sysdeps
	$(BIN)/python -m pytest -q --durations=30 tests

bench: $(STAMP) sysdeps
	$(BIN)/pip install -c constraints.txt -e '.[test,bench]'
	for f in benchmarks/*.py; do echo "# $$f"; $(BIN)/python $$f || exit 1; done

# The documentation site (docs/, mkdocs.yml): the API reference is generated from the app's
# OpenAPI schema offline (no Ray, no server); --strict fails on any broken link.
docs: $(STAMP)
	$(BIN)/pip install -c constraints.txt -e '.[test,docs]'
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict -d site

clean:
	rm -rf $(VENV)
