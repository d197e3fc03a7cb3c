PYTHON := .venv/bin/python

.PHONY: setup test lint emulators-up emulators-down demo bench

setup:
	bash scripts/setup_dev.sh

test:
	$(PYTHON) -m pytest -q -p no:bqemulator

lint:
	.venv/bin/ruff check .

# Prints export lines; use `eval "$$(python scripts/emulators.py up)"` in your shell instead
# to get the variables into it.
emulators-up:
	$(PYTHON) scripts/emulators.py up

emulators-down:
	$(PYTHON) scripts/emulators.py down

demo:
	$(PYTHON) scripts/demo.py

bench:
	$(PYTHON) scripts/benchmark.py
