PYTHON := .venv/bin/python
# Written by the last successful setup; setup runs again when it is missing or older
# than what it installs from, so `make test` or `make demo` works as the first command.
STAMP := .venv/.stamp
# The tiers are folders: tests/unit and tests/tooling need no server, tests/integration
# starts the emulators (its conftest holds their fixtures).
UNIT := $(PYTHON) -m pytest -q -p no:bqemulator tests/unit tests/tooling

.PHONY: setup test unit lint docs emulators-up emulators-down demo bench

$(STAMP): setup.py scripts/setup_dev.sh
	bash scripts/setup_dev.sh
	@touch $@

# Always runs the setup script (it is safe to repeat), then marks the venv as current.
setup:
	@rm -f $(STAMP)
	@$(MAKE) --no-print-directory $(STAMP)

# The whole suite, as .ci/run runs it: the unit tier on two workers, then the emulator
# tier in one process (it starts and stops its own emulators).
test: $(STAMP)
	$(UNIT) -n 2 --dist loadfile
	$(PYTHON) -m pytest -q -p no:bqemulator tests/integration

# Every test that needs no server (no emulators), on two pytest-xdist workers, one per core;
# a test file stays on one worker, so its module fixtures run once (faster than per test).
unit: $(STAMP)
	$(UNIT) -n 2 --dist loadfile

lint: $(STAMP)
	.venv/bin/ruff check .

# Rewrite the documents' generated blocks (docs/tables.md, docs/code-map.md, the README's
# options table); tests/tooling/test_table_docs.py fails when they are out of date.
docs: $(STAMP)
	$(PYTHON) scripts/gen_table_docs.py

# Prints export lines; use `eval "$$(python scripts/emulators.py up)"` in your shell instead
# to get the variables into it.
emulators-up: $(STAMP)
	$(PYTHON) scripts/emulators.py up

emulators-down: $(STAMP)
	$(PYTHON) scripts/emulators.py down

# `make demo KEEP=1` leaves the emulators running (`make demo --keep` would not: make reads
# --keep as its own --keep-going); the demo prints how to stop them.
demo: $(STAMP)
	$(PYTHON) scripts/demo.py$(if $(filter-out 0,$(KEEP)), --keep)

bench: $(STAMP)
	$(PYTHON) scripts/benchmark.py
