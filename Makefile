# The two commands of the README:
#   make demo   install what is needed (first run only), then run the main job on its defaults
#   make test   install what is needed (first run only), then run the test suite
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
LOCK := requirements/lock.txt
STAMP := $(VENV)/.installed

.PHONY: demo test setup toy clean-venv

setup: $(STAMP)
	@scripts/ensure_vulkan.sh

$(STAMP): $(LOCK) pyproject.toml scripts/setup_venv.sh
	@scripts/ensure_vulkan.sh
	scripts/setup_venv.sh $(VENV) $(LOCK)
	@touch $@

demo: setup
	$(PY) demos/pushcube_a2a.py

toy: setup
	$(PY) demos/toy_single_step.py --config configs/toy/default.yaml
	$(PY) demos/toy_single_step.py --config configs/toy/bimodal.yaml

test: setup
	$(PY) -m pytest -q

clean-venv:
	rm -rf $(VENV)
