# The two commands of README.md: `make demo` and `make test`. Both create the environment first
# if it is missing (or older than the requirements), and reinstall nothing when it is current.
# One environment per Python, as Blender ships them: Python 3.11 (Blender 4.2-5.0; bpy 5.0.1,
# numpy 1.26) in .venv, Python 3.13 (Blender 5.1+; bpy 5.3.0, numpy 2) in .venv-3.13
# (`make test PYTHON=python3.13`); building one never touches the other.
PYTHON ?= python3
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)
VENV := $(if $(filter 3.11,$(PYVER)),.venv,.venv-$(PYVER))
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test env build validate clean

env: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] in ((3, 11), (3, 13)), "Python 3.11 or 3.13 is required (the bpy module is built for those); set PYTHON=python3.11 or python3.13"'
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --disable-pip-version-check -q -r requirements-dev.txt
	touch $(STAMP)

# The headless batch on the bundled example (examples/demo/): an 8-frame trajectory, frames and a
# contact sheet under out/demo/. Diffusion when its weights are found (Hugging Face cache, or
# MODELS=DIR), else the weightless preview engine; the first line of output says which.
DEMO := examples/demo
MODELS ?=
demo: env
	$(PY) batch.py --image $(DEMO)/image.png --prompt "$$(cat $(DEMO)/prompt.txt)" \
		--mask $(DEMO)/mask.png --depth $(DEMO)/depth.npy --keyframes $(DEMO)/keyframes.json \
		--out out/demo --engine auto $(if $(MODELS),--models $(MODELS))

# One pytest worker per logical core (pytest-xdist), each with one math thread: torch's own thread pool
# in every worker (and in the Blender and CLI subprocesses the tests start) would oversubscribe the
# cores and make the suite slower than a single process. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= logical
# Each run first says what it tests: the Python, bpy and numpy versions.
VERSIONS := import sys, importlib.metadata as m; print("Python", sys.version.split()[0], "| bpy", m.version("bpy"), "| numpy", m.version("numpy"))
# The trained toy model, where this machine has the shared folder beside the project: the
# toy-marked tests (the method really editing a picture) run with it; elsewhere they skip and say why.
DH_TOY_MODEL ?= $(if $(wildcard ../shared/models/toy-depth/diffusion),$(abspath ../shared/models/toy-depth))
export DH_TOY_MODEL
test: env
	@$(PY) -c '$(VERSIONS)'
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(PY) -m pytest -n $(TEST_WORKERS)

# Validate the manifest and build the installable extension zip into dist/ (no tests, caches, venv).
validate: env
	$(PY) tools/blender_ext.py validate

build: env
	$(PY) tools/blender_ext.py build

clean:
	rm -rf dist out .pytest_cache
