# The commands the README shows; CI runs `make test` (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= How much aid has the US sent?

.PHONY: demo install test lint fmt bench clean

# Installs newsbot, indexes the bundled corpus and answers the example question.
demo: install
	$(VENV)/bin/newsbot index
	$(VENV)/bin/newsbot ask "$(QUESTION)"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	touch $@

# Installs newsbot and runs the linters and the whole test suite (integration tests included).
test: install lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check index bot tests benchmarks
	$(VENV)/bin/ruff format --check index bot tests benchmarks
	$(VENV)/bin/mypy

fmt: install
	$(VENV)/bin/ruff format index bot tests benchmarks
	$(VENV)/bin/ruff check --fix index bot tests benchmarks

bench: install
	$(PY) benchmarks/bench_index.py
	$(PY) benchmarks/bench_ask.py
	$(PY) benchmarks/bench_bot.py
	$(PY) benchmarks/bench_load.py

clean:
	rm -rf $(VENV) .newsbot
