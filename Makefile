# `make test` runs every check CI runs; `make dev` runs the service locally.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv test fmt lint unit cfn-lint openapi e2e dev clean

help:
	@echo "make test   run every check CI runs (format, clippy, tests against moto, template and OpenAPI checks, end-to-end over HTTP)"
	@echo "make dev    run the service locally: DynamoDB on 127.0.0.1:\$${DYNAMODB_PORT:-8000}, API on 127.0.0.1:\$${API_PORT:-9000}"
	@echo "make venv   install the pinned Python tools into $(VENV)/"

$(VENV)/.installed: requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

test: venv fmt lint unit cfn-lint openapi e2e

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

openapi: venv
	openapi-spec-validator openapi.yaml

# Starts tools/dev.sh on free ports, walks through the README's curl example over HTTP,
# stops it with SIGTERM and checks nothing is left listening.
e2e: venv
	$(PY) tools/e2e.py

dev: venv
	tools/dev.sh

clean:
	cargo clean
	rm -rf $(VENV)
