# The two commands of the README, and the quick check. Each sets up .venv/ first when needed
# (seconds when done). STACK=onedl runs them on the other OpenMMLab line, in .venv-onedl/
# (docs/install.md).
STACK ?= upstream
export STACK
VENV := $(if $(filter onedl,$(STACK)),.venv-onedl,.venv)
PY := $(VENV)/bin/python

.PHONY: setup demo test test-quick
setup:
	@bash scripts/setup_env.sh

demo: setup
	@bash scripts/demo.sh

# The full suite: what CI runs (.ci/run). One pytest-xdist worker per core, each with its share
# of the threads (tests/conftest.py); tests that share a trained toy stay on one worker.
test: setup
	$(PY) -m pytest tests -n auto --dist loadgroup

# A few minutes, in one process with every core: everything but the tests marked slow.
test-quick: setup
	$(PY) -m pytest tests -m "not slow"
