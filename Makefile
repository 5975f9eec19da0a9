# The two commands of the README:  make demo  and  make test.
# Each creates .venv and installs the project with its dev tools when they are missing or stale.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# The browser tests drive this Chromium (tests/conftest.py reads the same variable).
CHROMIUM_PATH ?= /usr/bin/chromium
APT_LOG := $(or $(TMPDIR),/tmp)/mgc-apt-chromium.log

.PHONY: demo test lint chromium pango benchmark clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit("Python 3.11+ is required, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "Installing the project and its dev tools into $(VENV) (first run: a few minutes)..."
	@$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	@$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP) pango
	@$(PY) manage.py demo

test: $(STAMP) chromium pango
	$(PY) -m pytest $(PYTEST_ARGS)

# Debian's Chromium, installed once when missing (never a browser downloaded by Playwright).
chromium:
	@test -x "$(CHROMIUM_PATH)" || { \
	  echo "Installing Debian's chromium for the browser tests (apt-get)..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >"$(APT_LOG)" 2>&1 \
	  || { echo "Could not install chromium with apt-get (see $(APT_LOG)); install it or set CHROMIUM_PATH." >&2; \
	       exit 1; }; }

# Debian's pango, which WeasyPrint (the model card's PDF export) loads, installed once when missing.
pango: $(STAMP)
	@$(PY) -c 'import weasyprint' >/dev/null 2>&1 || { \
	  echo "Installing Debian's pango for the PDF export (apt-get)..."; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libpango-1.0-0 libpangoft2-1.0-0) \
	    >"$(or $(TMPDIR),/tmp)/mgc-apt-pango.log" 2>&1 \
	  || { echo "Could not install pango with apt-get (see $(or $(TMPDIR),/tmp)/mgc-apt-pango.log)." >&2; exit 1; }; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

benchmark: $(STAMP)
	$(PY) manage.py benchmark --preset small

clean:
	rm -rf $(VENV) var test-artifacts
