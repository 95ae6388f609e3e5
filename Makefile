# The commands the README shows; CI runs `make test` (.ci/run).
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= What has Biden allowed Ukraine to do?
# Optional: a package index to take torch from before installing newsbot, e.g. the CPU-only
# builds at https://download.pytorch.org/whl/cpu. Empty (the default): pip resolves torch like
# every other dependency, from its configured index and wheel folders.
TORCH_INDEX ?=
# The torch version pyproject.toml pins, so that the two never disagree.
TORCH_VERSION := $(shell sed -n 's/^ *"torch==\([^"]*\)".*/\1/p' pyproject.toml)
PIP := $(PY) -m pip install --disable-pip-version-check

.PHONY: demo install test unit lint fmt bench env-example clean

# Installs newsbot, indexes the bundled corpus and asks the example question, then two of the
# README's "Try it" questions: a story three outlets carry, and a figure that changed.
demo: install
	@echo "==> Indexing corpus/ into .newsbot/ (the first run loads the model: up to a minute)"
	$(VENV)/bin/newsbot index
	@echo "==> Asking: $(QUESTION)"
	$(VENV)/bin/newsbot ask "$(QUESTION)"
	@echo "==> Asking: Who bought Kestrel Ferries?  (one story, three outlets)"
	$(VENV)/bin/newsbot ask "Who bought Kestrel Ferries?"
	@echo "==> Asking: How much will it cost to repair the Old Mill Bridge?  (the cost changed)"
	$(VENV)/bin/newsbot ask "How much will it cost to repair the Old Mill Bridge?"
	@echo
	@echo "newsbot is installed in $(VENV)/bin. Try the README's other questions, or your own:"
	@echo "    $(VENV)/bin/newsbot ask \"How many gates does the Tarrow flood barrier have?\""
	@echo "    $(VENV)/bin/newsbot chat"
	@echo "or put it on your PATH for this shell with"
	@echo "    source $(VENV)/bin/activate"

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@echo "==> Creating $(VENV) and installing newsbot with its development tools and extras (discord, learn)."
	@echo "    This takes a few minutes the first time (torch, onnxruntime, chromadb, ...)."
	python3 -m venv $(VENV)
ifneq ($(TORCH_INDEX),)
	@echo "==> Installing torch==$(TORCH_VERSION) from $(TORCH_INDEX)"
	$(PIP) "torch==$(TORCH_VERSION)" --index-url "$(TORCH_INDEX)"
endif
	@echo "==> Installing newsbot and its dependencies"
	$(PIP) -e '.[dev]'
	touch $@
	@echo "==> Installed: $(VENV)/bin/newsbot"

# Installs newsbot and runs the linters and the whole test suite (integration tests included).
test: install lint
	HF_HUB_OFFLINE=1 $(PY) -m pytest

# The fast tests only: no real model, no Chroma server, no lint.
unit: install
	HF_HUB_OFFLINE=1 $(PY) -m pytest -m "not integration"

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

# Writes .env.example from the settings' descriptions: index/settings.py and bot/settings.py.
env-example: install
	$(PY) -m index.env_example > .env.example

clean:
	rm -rf $(VENV) .newsbot
