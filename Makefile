# `make test` runs every check CI runs; `make dev` runs the service locally.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv cleanup test check fmt lint deps unit one-build docs django-client cfn-lint sam-validate policy openapi e2e dev build bench fuzz clean

help:
	@echo "make check  the fast inner loop: format, clippy, unit tests, the store's conformance suite and the API's HTTP tests, on an in-process Dynoxide"
	@echo "make test   run every check CI runs (format, clippy, tests against Dynoxide, template, OpenAPI and Markdown checks, end-to-end over HTTP with the README's walk-through)"
	@echo "make dev    run the service locally: DynamoDB on 127.0.0.1:\$${DYNAMODB_PORT:-8000}, API on 127.0.0.1:\$${API_PORT:-9000}"
	@echo "make cleanup  the cleanup's Scan once, against a running make dev"
	@echo "make build  sam build: three arm64 bootstrap binaries under .aws-sam/build/"
	@echo "make bench  release build, then every performance figure side by side with django-dynamodb-sessions: bench/results.{json,md,png}"
	@echo "make fuzz   libFuzzer on each fuzz target for FUZZ_SECONDS (default 60) each"
	@echo "make venv   install the pinned Python tools into $(VENV)/"

CHECKOV := $(VENV)/checkov/bin/checkov
# No telemetry from the SAM CLI; checkov looks nothing up online.
export SAM_CLI_TELEMETRY := 0
export BC_SKIP_MAPPING := TRUE

REQ := tools/requirements

# The Python installs and checks run beside cargo in `make test` at the lowest priority:
# they take the cores cargo leaves idle (its longest crates build alone), not its share.
NICE := nice -n 19

# uv installs each venv from its pinned requirements file; it is itself pinned, in
# tools/requirements/uv.txt, and installed by pip into .tools/uv. Like pip with
# --no-compile, it leaves Python to compile the modules a tool imports, when it does.
UV := .tools/uv/bin/uv
UV_VENV := $(UV) venv --quiet --allow-existing --python python3
export UV_PYTHON_DOWNLOADS := never
$(UV): $(REQ)/uv.txt
	python3 -m venv .tools/uv
	.tools/uv/bin/python -m pip install --quiet --disable-pip-version-check -r $(REQ)/uv.txt
	touch $@

# The one source archive among the requirements (django-dynamodb-sessions-mwas) is built
# with the build tools pinned in build.txt.
$(VENV)/.installed: $(REQ)/dev.txt $(REQ)/build.txt $(UV)
	$(UV_VENV) $(VENV)
	$(NICE) $(UV) pip install --quiet --python $(PY) --build-constraints $(REQ)/build.txt -r $(REQ)/dev.txt
	touch $@

# Checkov's pins conflict with dev.txt's, and schemathesis's and the bench's are kept
# apart the same way: each has a venv of its own.
VENVS_APART := $(VENV)/checkov/.installed $(VENV)/schemathesis/.installed $(VENV)/bench/.installed
$(VENVS_APART): $(VENV)/%/.installed: $(REQ)/%.txt $(UV) $(VENV)/.installed
	$(UV_VENV) $(VENV)/$*
	$(NICE) $(UV) pip install --quiet --python $(VENV)/$*/bin/python -r $<
	touch $@

venv: $(VENV)/.installed

# The Django client package, installed as a site installs it (not editable), again
# whenever one of its files changes.
CLIENT_FILES := $(shell git ls-files clients/django)
INSTALL_CLIENT = $(NICE) $(UV) pip install --quiet --no-deps --reinstall-package django-session-service \
	--build-constraints $(REQ)/build.txt ./clients/django --python
$(VENV)/.client-installed: $(VENV)/.installed $(CLIENT_FILES)
	$(INSTALL_CLIENT) $(PY)
	touch $@

# The newest Django release needs Python 3.12 or later: CPython 3.13, built from its
# pinned source (tools/python.sh), and a venv of its own with Django 6.1 and the package.
PY313 := .tools/python3.13/bin/python3.13
.tools/python3.13/.built: tools/python.sh
	$(NICE) tools/python.sh

DJANGO6 := $(VENV)/django6
$(DJANGO6)/.client-installed: $(REQ)/django6.txt $(REQ)/build.txt $(UV) .tools/python3.13/.built $(CLIENT_FILES)
	$(UV) venv --quiet --allow-existing --python $(PY313) $(DJANGO6)
	$(NICE) $(UV) pip install --quiet --python $(DJANGO6)/bin/python -r $(REQ)/django6.txt
	$(INSTALL_CLIENT) $(DJANGO6)/bin/python
	touch $@

# The client's own tests that need no service (SigV4 against a recorded signature, the
# retry rules, the merge), under the LTS and the newest release; Django's
# SessionTestsMixin runs against make dev in e2e, under both.
django-client: $(VENV)/.client-installed $(DJANGO6)/.client-installed
	$(NICE) $(PY) tools/django_client.py offline
	$(NICE) $(DJANGO6)/bin/python tools/django_client.py offline

# Every cargo command make runs compiles the workspace's own crates with clippy's driver
# (what `cargo clippy` does, but on a build rather than a check), with warnings denied:
# clippy's lints then cost no compile of their own, where a `cargo clippy` would compile
# every dependency a second time (2 min 34 s from a fresh clone). The dependencies are
# compiled by rustc as before, and a change to these settings rebuilds only our crates.
export RUSTC_WORKSPACE_WRAPPER := $(shell rustc --print sysroot)/bin/clippy-driver
export CLIPPY_ARGS := -D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__

# One profile (dev) and one feature set serve the tests, `make dev` and the end-to-end
# run, so the AWS SDK is compiled once (tools/workspace-hack, checked by one-build).
# Two jobs: the Python installs and the template checks run while cargo compiles (whose
# longest crates keep one core busy, not two); each target's output is printed whole.
# The end-to-end run comes last, alone, so that no test shares the machine with it.
test:
	$(MAKE) --no-print-directory -j2 --output-sync=target venv fmt lint deps docs unit one-build \
		django-client cfn-lint sam-validate policy openapi $(VENV)/schemathesis/.installed
	$(MAKE) --no-print-directory e2e

# No emulator process and no Python: the unit tests, the store's conformance suite and
# the API's HTTP tests, each test binary on a Dynoxide of its own, in process.
check: fmt lint
	cargo test --workspace --locked --lib --bins
	cargo test --locked -p session-store --test store
	cargo test --locked -p session-api --test http

fmt:
	cargo fmt --all -- --check

# Clippy on every target (`cargo clippy --all-targets -- -D warnings`), through the
# build the tests use.
lint:
	test -x "$$RUSTC_WORKSPACE_WRAPPER" || { echo "clippy is not installed: rustup component add clippy" >&2; exit 1; }
	cargo test --workspace --all-targets --locked --no-run

# The crypto crates the project pins itself come in one version, the SDK's own
# (other crates' duplicates are theirs to remove: digest 0.10 comes with sha1 0.10,
# which aws-config's SSO token cache uses).
deps:
	! cargo tree --workspace --locked --duplicates -e normal --depth 0 | grep -E '^(hmac|sha2) v'

# Each test binary serves its own Dynoxide (in process, on a free loopback port) unless
# AWS_ENDPOINT_URL_DYNAMODB names a DynamoDB endpoint; the SSM tests start moto's server.
unit: venv lint
	cargo test --workspace --locked

# The binaries make dev builds on their own reuse the test build instead of compiling again.
one-build: unit
	python3 tools/one_build.py

# Every tracked Markdown file, read by a Markdown parser: fences closed, no heading
# swallowed by a code block, every relative link and anchor resolves.
docs: venv
	$(NICE) $(PY) tools/markdown_check.py --self-test $$(git ls-files '*.md')

# Each check runs on the template as it is (FrontDoor=HttpApi, TableMode=single), on a
# copy whose FrontDoor default is FunctionUrl, and on one whose table is a global table
# (TableMode=global with a replica in eu-west-1), so that both front doors and both
# kinds of table are checked.
TEMPLATES := template.yaml target/template-function-url.yaml target/template-global.yaml
target/template-function-url.yaml: template.yaml
	mkdir -p target
	sed 's/^    Default: HttpApi$$/    Default: FunctionUrl/' template.yaml > $@
	grep -q '^    Default: FunctionUrl$$' $@
target/template-global.yaml: template.yaml
	mkdir -p target
	sed -e 's/^    Default: single$$/    Default: global/' \
		-e '/^  ReplicaRegion:$$/,/Default/ s/^    Default: ""$$/    Default: eu-west-1/' template.yaml > $@
	grep -q '^    Default: global$$' $@
	grep -q '^    Default: eu-west-1$$' $@

cfn-lint: venv $(TEMPLATES)
	$(NICE) cfn-lint $(TEMPLATES)

# Needs a region and no credentials.
sam-validate: venv $(TEMPLATES)
	for t in $(TEMPLATES); do AWS_DEFAULT_REGION=us-east-1 $(NICE) sam validate --template $$t || exit 1; done

# Every rule passes or is skipped in template.yaml with the reason written down.
policy: $(VENV)/checkov/.installed $(TEMPLATES)
	$(NICE) $(CHECKOV) $(addprefix --file ,$(TEMPLATES)) --framework cloudformation --compact --quiet --skip-download

openapi: venv
	$(NICE) openapi-spec-validator openapi.yaml

# Starts tools/dev.sh on free ports, walks through the README's curl example over HTTP,
# stops it with SIGTERM and checks nothing is left listening.
e2e: venv $(VENV)/schemathesis/.installed $(VENV)/.client-installed $(DJANGO6)/.client-installed
	E2E_DJANGO_PYTHONS="$(PY) $(DJANGO6)/bin/python" $(PY) tools/e2e.py

dev: venv
	tools/dev.sh

# The cleanup's Scan once, through the emulator of a `make dev` that is running.
cleanup: venv
	$(VENV)/bin/cargo-lambda lambda invoke session-cleanup --data-ascii '{}' \
		--invoke-address 127.0.0.1 --invoke-port $${API_PORT:-9000}

# cargo-lambda cross-compiles with zig, which must come first on PATH (the venv does).
build: venv
	sam build

# Release binaries, then the harness (bench/src) runs every measurement against Dynoxide
# in its own process and writes bench/results.json and results.md; the plot follows.
# bench/floors holds the two floors ours is measured against (lambda_http alone, and
# the workload's DynamoDB calls without session logic), built on the same profile.
# Among the floors, session-api-static-env is the API with its AWS clients made without
# aws-config's provider chains, to measure their cost: one build serves every binary.
BENCH_PACKAGES = -p session-api -p session-cleanup -p session-auditor -p session-bench -p session-floors
# make bench aims to end within 20 minutes of its start, builds included: past
# BENCH_BUDGET_S the measurement the run takes last, the Django backend under Lambda's
# CPU share, is left out row by row, each row saying so (the measurements before it,
# ours under the share included, always run). 19 minutes, since a row started just
# before then still runs to its end: about 30 s at 128 MB, a few seconds at 1,769 MB.
BENCH_STARTED := $(shell date +%s)
BENCH_BUDGET_S ?= 1140
bench: venv $(VENV)/bench/.installed $(VENV)/.client-installed
	cargo build --release --locked $(BENCH_PACKAGES)
	target/release/session-bench --out bench --ends-by $$(( $(BENCH_STARTED) + $(BENCH_BUDGET_S) ))
	$(VENV)/bench/bin/python tools/bench_plot.py bench/results.json bench/results.png

# cargo fuzz, pinned, into .tools/; it runs on the stable toolchain without a sanitizer.
.tools/bin/cargo-fuzz:
	cargo install cargo-fuzz --version 0.13.2 --locked --root .tools

fuzz: .tools/bin/cargo-fuzz
	tools/fuzz.sh

clean:
	cargo clean
	rm -rf $(VENV) .tools
