# `make test` runs every check CI runs; `make dev` runs the service locally.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv test fmt lint unit cfn-lint dev clean

help:
	@echo "make test   run every check CI runs (format, clippy, tests against moto, cfn-lint)"
	@echo "make dev    run the service locally (arrives with the session API)"
	@echo "make venv   install the pinned Python tools into $(VENV)/"

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

test: venv fmt lint unit cfn-lint

fmt:
	cargo fmt --all -- --check

lint:
	cargo clippy --workspace --all-targets --locked -- -D warnings

# Each test binary starts its own moto server on a free loopback port unless
# AWS_ENDPOINT_URL_DYNAMODB names one, and the server ends with the binary.
unit: venv
	cargo test --workspace --locked

cfn-lint: venv
	cfn-lint template.yaml

dev:
	@echo "make dev arrives with the session API; until then, make test runs the store against moto."
	@exit 1

clean:
	cargo clean
	rm -rf $(VENV)
