# The two commands of the README. Each sets up .venv/ first when needed (seconds when done).
PY := .venv/bin/python

.PHONY: setup demo test
setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(PY) -m pytest tests
