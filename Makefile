# vmcore-dap — the two commands of the README, and the pieces they are made of.
# Every target installs what it needs itself (idempotently); expensive artifacts are cached outside the
# clone in $(VMCORE_DAP_CACHE), keyed by content.

SHELL := /bin/bash
export VMCORE_DAP_CACHE ?= $(HOME)/.cache/vmcore-dap
PY := .venv/bin/python
PYTEST_ARGS ?=
# The version the wheel and the .vsix carry (package.json's = adapter/vmcore_dap/__init__.py's).
VERSION = $(shell node -p 'require("./vscode-extension/package.json").version')

.PHONY: all setup setup-node package samples samples-matrix samples-huge crash oracle oracle-matrix demo test \
	test-python test-extension test-extension-dap test-extension-e2e test-fresh test-matrix test-huge bench lint \
	clean-venv

all: test

setup:
	@scripts/bootstrap.sh

setup-node: setup
	@scripts/setup-node.sh

# The build outputs: dist/vmcore_dap-<version>-py3-none-any.whl and dist/vmcore-dap-<version>.vsix
# (which carries the wheel). vsce runs the extension's vscode:prepublish: compile, then build the wheel.
package: setup-node
	@cd vscode-extension && npm run --silent package

# The samples `make test` uses: the default kernel's five and one of every other kernel of the
# matrix (samples/README.md); samples-matrix builds every sample of the matrix.
samples: setup
	@$(PY) samples/make-vmcore --make-test
	@$(PY) samples/fetch-kernel-source --all-samples

samples-matrix: samples
	@$(PY) samples/make-vmcore --matrix

# The ten-times-larger sample (≈50,000 tasks, 8 CPUs, 6 GiB; 3–10 minutes under TCG, once):
# make bench and make test-huge use it, make test does not.
samples-huge: setup
	@$(PY) samples/make-vmcore huge

# Debian's crash packages the oracle runs (samples/crash-builds.json), extracted into the cache.
crash: setup
	@$(PY) samples/crash_builds.py >/dev/null

# crash's answers about each sample (samples/crash_choice.py says which crash reads which dump).
oracle: samples crash
	@$(PY) samples/crash_oracle.py --all

oracle-matrix: samples-matrix crash
	@VMCORE_DAP_MATRIX=1 $(PY) samples/crash_oracle.py --all

demo: setup
	@$(PY) samples/make-vmcore oops-null
	@$(PY) samples/demo.py

test-python: oracle
	@$(PY) -m pytest $(PYTEST_ARGS)

test-extension-dap: setup-node samples
	@cd vscode-extension && npm run --silent test:dap

# The real-VS-Code tests run on the packaged .vsix, installed as users install it.
test-extension-e2e: package samples
	@cd vscode-extension && VMCORE_DAP_VSIX="$(CURDIR)/dist/vmcore-dap-$(VERSION).vsix" npm run --silent test:e2e

test-extension: test-extension-dap test-extension-e2e

test: test-python test-extension

# `make test` on samples built from scratch (new races), timed by phase: scripts/test-fresh.sh.
# FRESH=all starts from an empty cache (kernels downloaded, crash built) as a fresh machine does.
test-fresh:
	@scripts/test-fresh.sh

# The tests parametrised by the matrix (samples.sample_store.samples_under_test) on all its samples:
# the samples' own tests, and every end-to-end test on the other kernels' samples (marker other_kernel).
test-matrix: oracle-matrix
	@VMCORE_DAP_MATRIX=1 $(PY) -m pytest tests/samples/test_matrix_samples.py tests/samples/test_oracle.py \
		tests/e2e/test_list_uaf.py $(PYTEST_ARGS)
	@VMCORE_DAP_MATRIX=1 $(PY) -m pytest tests/e2e -m 'other_kernel and not huge' \
		--ignore=tests/e2e/test_list_uaf.py $(PYTEST_ARGS)

# The tests marked `huge` (pytest -m huge: the scale tests against crash on the huge sample) and the
# real-VS-Code test that opens it; `make test` deselects them (pyproject's addopts).
test-huge: samples-huge crash package
	@$(PY) -m pytest -m huge $(PYTEST_ARGS)
	@cd vscode-extension && \
		VMCORE_DAP_VSIX="$(CURDIR)/dist/vmcore-dap-$(VERSION).vsix" npm run --silent test:e2e-huge

bench: oracle samples-huge
	@$(PY) bench/run.py

lint: setup-node
	@$(PY) -m ruff check adapter tests samples bench
	@$(PY) -m mypy
	@cd vscode-extension && npm run --silent lint

clean-venv:
	rm -rf .venv
