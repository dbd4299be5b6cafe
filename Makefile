# semsearch: `make help` lists the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH ?= torch==2.13.0
INDEX_DIR ?= $(or $(SEMSEARCH_INDEX_DIR),var/index)
Q ?= power outages

SHARED ?= ../shared
EVAL_SETS ?= $(SHARED)/data/scifact-dev $(SHARED)/data/bbc-dev

BENCH_CORPUS ?= $(if $(wildcard $(SHARED)/data/bbc),$(SHARED)/data/bbc,seeds)
BENCH_SIZES ?= 100000,1000000
SCALE ?= 100000
# The browser tests drive Debian's chromium with Playwright; never `playwright install`.
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
MILVUS_VENV ?= .venv-milvus
MILVUS_SERVER ?= milvus==2.3.5
LOAD_CLIENTS ?= 8
LOAD_REQUESTS ?= 1500

.PHONY: help install run index serve search info eval bench bench-scale load test test-milvus lint format clean chromium screenshots

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# CPU torch first: otherwise pip resolves sentence-transformers to a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "$(TORCH)"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install semsearch with its dev tools

$(INDEX_DIR)/CURRENT: | $(STAMP)
	$(BIN)/semsearch index

ifeq ($(or $(SEMSEARCH_STORE),$(SEMSEARCH_BACKEND)),milvus)
# The index lives in Milvus: `semsearch index` checks it and rebuilds only when seeds/ changed.
run: $(STAMP)
	$(BIN)/semsearch index -q
	$(BIN)/semsearch serve
else
run: $(STAMP) $(INDEX_DIR)/CURRENT ## install if needed, index seeds/ if needed, serve on 127.0.0.1:8000
	$(BIN)/semsearch serve
endif

index: $(STAMP) ## (re)build the index from seeds/
	$(BIN)/semsearch index

serve: $(STAMP) ## serve the API on 127.0.0.1:8000
	$(BIN)/semsearch serve

search: $(STAMP) ## search from the shell: make search Q="power outages"
	$(BIN)/semsearch search "$(Q)"

info: $(STAMP) ## show what is indexed
	$(BIN)/semsearch info

eval: $(STAMP) ## measure search quality on the BEIR dev sets in ../shared/data
	@for set in $(EVAL_SETS); do \
	  if [ -d "$$set" ]; then $(BIN)/semsearch eval "$$set" --index "var/eval/$$(basename $$set)" || exit 1; \
	  else echo "skipping $$set: not found (set SHARED=path/to/shared)"; fi; \
	done

bench: $(STAMP) ## benchmark build, rebuild, HTTP queries and vector search (figures in var/bench.json)
	$(BIN)/semsearch bench --corpus "$(BENCH_CORPUS)" --vector-sizes "$(BENCH_SIZES)" --json var/bench.json

bench-scale: $(STAMP) ## archive-scale figures: SCALE passages (default 100000), synthetic vectors (var/bench-scale.json)
	$(BIN)/semsearch bench --scale $(SCALE) --corpus "$(BENCH_CORPUS)" --json var/bench-scale.json

load: $(STAMP) ## load test on 127.0.0.1: concurrent clients through a reindex and a reload
	$(BIN)/python -m semsearch.search.load --clients $(LOAD_CLIENTS) --requests $(LOAD_REQUESTS)

chromium: ## install Debian's chromium for the browser tests, when it is missing
	@test -x $(CHROMIUM) || { \
	  echo "installing chromium for the browser tests (apt-get)"; \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; \
	} || { if [ -n "$$CI" ]; then exit 1; fi; echo "warning: no chromium: the browser tests will be skipped"; }

screenshots: $(STAMP) chromium ## refresh the page screenshots in docs/ (the browser tests take them)
	SCREENSHOT_DIR=docs $(BIN)/python -m pytest -q tests/browser

test: $(STAMP) chromium ## run the test suite
	$(BIN)/python -m pytest

# The server gets a venv of its own (MILVUS_VENV, kept like .venv) and a network namespace.
test-milvus: $(STAMP) ## the Milvus tests against a real Milvus 2.3.5 server (root; see .ci/milvus-tests)
	MILVUS_VENV=$(MILVUS_VENV) MILVUS_SERVER="$(MILVUS_SERVER)" PYTHON=$(PYTHON) .ci/milvus-tests

lint: $(STAMP) ## ruff lint and format check, the layering contracts, mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy

format: $(STAMP) ## apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## remove the index and caches (keeps .venv)
	rm -rf var .pytest_cache .ruff_cache
