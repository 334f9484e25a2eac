# Cloudless: the two commands that matter are `make demo` and `make test`.
# Both run the idempotent set-up first (tools/setup.sh).

SHELL := /bin/bash
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/.venv/bin:$(PATH)

.PHONY: setup demo test test-python test-contracts test-e2e clean

setup:
	@bash tools/setup.sh

demo: setup
	cloudless demo

test: setup
	@bash tools/test.sh

test-python: setup
	python -m pytest -p no:ape_test tests/python

test-contracts: setup
	@bash tools/test.sh contracts

test-e2e: setup
	@bash tools/test.sh e2e

clean:
	rm -rf .build .toolchain functions/target functions/dist .cloudless
