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

# Static analysis with slither; fails on High or Medium findings that
# docs/security.md does not justify. See docs/security.md.
.PHONY: lint
lint: setup
	@bash tools/lint.sh

# A long run of the contract state machines of deals and of challenges (short
# runs are part of `make test`): FUZZ_EXAMPLES random histories of FUZZ_STEPS
# steps each, all invariants after each step.
FUZZ_EXAMPLES ?= 200
FUZZ_STEPS ?= 50
.PHONY: fuzz
fuzz: setup
	@CLOUDLESS_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CLOUDLESS_FUZZ_STEPS=$(FUZZ_STEPS) bash tools/test.sh fuzz

# Gas of every contract transaction, the reference deal lifecycle and the
# scaling over 1, 10 and 100 epochs, measured on an anvil that the benchmark
# starts on 127.0.0.1. The last line is `lifecycle gas: N`. See docs/benchmarks.md.
.PHONY: gas
gas: setup
	@python bench/gas_bench.py

# The Wasm runtime's warm call against bare wasmtime-py, cold start and calls
# per second, direct and over HTTP through a provider node on 127.0.0.1.
# The last line is `warm overhead: R`. See docs/benchmarks.md.
.PHONY: bench-runtime
bench-runtime: setup
	@python bench/runtime_bench.py

# Receipts signed and verified per second on one core (the fast path against
# eth_account), gas of epoch proofs, challenges, answers and fraud proofs on an
# anvil that the benchmark starts on 127.0.0.1, and the latency that
# replication k = 2 and 3 adds to a call through the gateway and three nodes.
# The last line is `receipts verified per second: N`. See docs/benchmarks.md.
.PHONY: bench-proofs
bench-proofs: setup
	@python bench/proofs_bench.py
