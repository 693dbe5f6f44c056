# opsdesk: `make demo` serves the seeded product; `make test` installs and runs every test.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install demo test lint services browser mailserver pdf clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip wheel
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/opsdesk demo

services:
	./scripts/ensure-services.sh

browser:
	./scripts/ensure-browser.sh

mailserver:
	./scripts/ensure-dovecot.sh

pdf:
	./scripts/ensure-pdf.sh

lint: install
	$(BIN)/ruff check src tests migrations
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install services browser mailserver pdf lint
	$(BIN)/pytest -n 2 --dist loadfile -q

clean:
	rm -rf $(VENV) data build *.egg-info src/*.egg-info
