# The two commands of the README, and the quick check. Each sets up .venv/ first when needed
# (seconds when done).
PY := .venv/bin/python

.PHONY: setup demo test test-quick
setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

# The full suite: what CI runs (.ci/run).
test: setup
	$(PY) -m pytest tests

# A few minutes: everything but the end-to-end training runs marked slow.
test-quick: setup
	$(PY) -m pytest tests -m "not slow"
