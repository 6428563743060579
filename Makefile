# The verbs people and workflows use. Every CI step is one of these, so what runs in CI runs here.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
INFRA_VENV := infra/.venv
PY := $(VENV)/bin/python
INFRA_PY := $(INFRA_VENV)/bin/python
# Stamped once the locked packages are in and infra/ and the repository root are on its path.
INFRA_READY := $(INFRA_VENV)/.ready
# uv itself, hash-locked (tests/tools/uv-requirements.txt); every lock below carries hashes too.
UV_LOCK := tests/tools/uv-requirements.txt
MODEL_ROOT ?= build/models
# Your own already-trained model (.keras, .h5 or a SavedModel directory, committed to the repository):
# set SOURCE here and every verb and workflow serves and deploys it; or pass SOURCE=… once.
SOURCE ?=
NAME ?=
VERSION ?= 1
EVAL ?=
MIN_ACCURACY ?= 0
MODEL_NAME ?= $(if $(SOURCE),$(shell $(PYTHON) -m model.source "$(SOURCE)" $(NAME)),iris)
MODEL_VERSION ?= $(if $(SOURCE),$(VERSION),1)
PORT ?= 8080
ENV ?= dev
RUNTIME ?= auto
# Lambda's Python: one value for the zip and the function, the default in Pulumi.yaml's config schema.
PYTHON_VERSION ?= $(shell sed -n "/^  lambdaPythonVersion:/,/default:/s/^ *default: *'\([0-9.]*\)'.*/\1/p" Pulumi.yaml)
ARCHES ?= x86_64 arm64
DIST ?= dist

.PHONY: help install install-infra tools model examples model-ref serve quickstart package plan plan-diff bootstrap smoke compare bench bench-image bench-capture bench-shadow bench-drift drift lint test test-main test-infra test-engine lock clean

help: ## list the verbs
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(VENV)/.installed: tests/requirements.txt $(UV_LOCK)
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --require-hashes -r $(UV_LOCK)
	$(VENV)/bin/uv pip sync -q --python $(PY) tests/requirements.txt
	touch $@

$(INFRA_READY): infra/requirements.txt $(UV_LOCK)
	$(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/pip install -q --require-hashes -r $(UV_LOCK)
	$(INFRA_VENV)/bin/uv pip sync -q --python $(INFRA_PY) infra/requirements.txt
	@# On the venv's path: infra/ (its program, offline and delivery packages) and the repository root
	@# (serving/contract.py, standard library only).
	$(INFRA_PY) -c 'import pathlib, sysconfig; pathlib.Path(sysconfig.get_paths()["purelib"], "twinserve.pth").write_text("$(CURDIR)/infra\n$(CURDIR)\n")'
	touch $@

install: $(VENV)/.installed $(INFRA_READY) ## create both virtualenvs from the locks

install-infra: $(INFRA_READY) ## only infra's virtualenv (what previews and deploys need)

model: $(VENV)/.installed ## train, gate and export to $(MODEL_ROOT); or import SOURCE=file (NAME=, VERSION=, EVAL=x.npz, MIN_ACCURACY=)
	$(PY) -m model --output $(MODEL_ROOT) $(if $(SOURCE),--source "$(SOURCE)" --name "$(MODEL_NAME)" --version "$(MODEL_VERSION)" \
	  $(if $(EVAL),--eval "$(EVAL)" --min-accuracy "$(MIN_ACCURACY)"))

EXAMPLES_DIR ?= build/examples
examples: $(VENV)/.installed ## write the example models (digits CNN, text, two inputs and outputs) to $(EXAMPLES_DIR)
	$(PY) -m model.examples --out $(EXAMPLES_DIR)

model-ref: ## print the model's name and version, as the image build needs them
	@echo "model_name=$(MODEL_NAME)"
	@echo "model_version=$(MODEL_VERSION)"

tools: ## build the real engines the tests drive (Pulumi CLI, Kubernetes provider, control plane, actionlint); TOOLS_GROUP= for one group
	tests/tools/build.sh $(if $(TOOLS_GROUP),--only $(TOOLS_GROUP))

lint: install tools ## ruff over the whole tree, actionlint over the workflows
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	"$$(tests/tools/build.sh --paths | sed -n 's/^ACTIONLINT=//p')" -no-color -shellcheck "$(abspath $(VENV))/bin/shellcheck"

# One test file per worker process, one worker per core: a file's tests share its module fixtures.
PARALLEL := -n auto --dist loadfile

# The three tiers run at once, each printing its report when it ends: the engines' tier mostly waits on
# its control plane and CLI, so it fills the cores the other tiers leave idle.
test: lint ## lint, then the whole test suite: the main venv's, infra's and the real engines' tiers at once
	@echo "three tiers at once (main, infra, engine); each prints its report when it ends"
	@$(MAKE) --no-print-directory -j3 --output-sync=target test-main test-infra test-engine

test-main: install ## the main venv's tests: model, serving, workflows
	$(PY) -m pytest tests --ignore=tests/infra --ignore=tests/engine $(PARALLEL)

test-infra: install ## infra's tests under Pulumi's mocks
	$(INFRA_PY) -m pytest tests/infra $(PARALLEL)

test-engine: install ## the real engines' tests (`make tools` first): Pulumi CLI, Kubernetes provider, control plane
	$(INFRA_PY) -m pytest tests/engine -v

serve: $(VENV)/.installed ## serve the exported model on :$(PORT) (RUNTIME=litert|tensorflow)
	TWINSERVE_MODEL_ROOT=$(MODEL_ROOT) TWINSERVE_MODEL_NAME=$(MODEL_NAME) TWINSERVE_RUNTIME=$(RUNTIME) PORT=$(PORT) $(PY) -m serving

quickstart: model ## set up, train and export, serve the model and send it one prediction
	$(PY) -m serving.tools.quickstart --model-root $(MODEL_ROOT) --model-name $(MODEL_NAME) --port $(PORT)

package: model ## build dist/lambda-<arch>.zip for Lambda's Python (PYTHON_VERSION=…, ARCHES=…)
	$(PY) -m serving.tools.packaging --model-root $(MODEL_ROOT) --model-name $(MODEL_NAME) --python-version $(PYTHON_VERSION) --out $(DIST) $(addprefix --arch ,$(ARCHES))

PLAN_DIR ?= build/plan
BASE_PLAN_DIR ?= build/plan-base
ENVS := dev staging prod

ZIPS := $(foreach a,$(ARCHES),$(DIST)/lambda-$(a).zip)

plan: $(INFRA_READY) $(ZIPS) ## render ENV's stack offline into $(PLAN_DIR)/$(ENV) (ENV=all for every one)
	for env in $(if $(filter all,$(ENV)),$(ENVS),$(ENV)); do \
	  $(INFRA_PY) infra/offline/plan.py --env $$env --out $(PLAN_DIR) --zip-dir $(DIST) $(if $(IMAGE),--image $(IMAGE)); done

$(ZIPS) &:
	$(MAKE) package

plan-diff: $(INFRA_READY) ## markdown diff of $(BASE_PLAN_DIR) (e.g. main's) against $(PLAN_DIR)
	$(INFRA_PY) infra/offline/plan_diff.py $(BASE_PLAN_DIR) $(PLAN_DIR)

RUNS ?= 10
SECONDS_PER_RUN ?= 5
HANDLER_CALLS ?= 500
COMPARE_DIR ?= build/compare
PRICES ?= infra/compare/prices.yaml
MODEL_ARGS = --model-root $(MODEL_ROOT) --model-name $(MODEL_NAME) --model-version $(MODEL_VERSION)

compare: $(VENV)/.installed $(INFRA_READY) model ## measure the model (SOURCE=… for yours) on both runtimes, price every environment: $(COMPARE_DIR)/report.md and charts
	$(PY) -m serving.tools.bench.runtimes $(MODEL_ARGS) --runs $(RUNS) --seconds $(SECONDS_PER_RUN) \
	  --calls $(HANDLER_CALLS) --json $(COMPARE_DIR)/measurements.json
	cd infra && $(abspath $(INFRA_PY)) -m compare --measurements $(abspath $(COMPARE_DIR))/measurements.json \
	  --prices $(abspath $(PRICES)) --out $(abspath $(COMPARE_DIR))

bootstrap: $(INFRA_READY) ## once per fork: bootstrap stack, repository variables, environments (REPO=owner/name)
	REPO="$(REPO)" PYTHON="$(abspath $(INFRA_PY))" infra/bootstrap/bootstrap.sh

smoke: $(INFRA_READY) ## after an up: V2 ready, metadata and one inference on each runtime of ENV
	mkdir -p build
	pulumi stack output --json --stack "$${STACK:-$(ENV)}" > build/outputs-$(ENV).json
	$(INFRA_PY) infra/delivery/smoke.py build/outputs-$(ENV).json --metadata $(DIST)/model-metadata.json

bench: $(VENV)/.installed model ## the model (SOURCE=… for yours) on its own example: throughput and latency against a baseline and a floor, cold starts and sizes, faults
	$(PY) -m serving.tools.bench $(MODEL_ARGS)
	$(PY) -m serving.tools.bench.cold_start $(MODEL_ARGS) --json build/bench/cold-start.json
	$(PY) -m serving.tools.bench.faults $(MODEL_ARGS)
	$(PY) -m serving.tools.bench.json_paths $(MODEL_ARGS) --rows 1 32
	$(MAKE) --no-print-directory bench-image

IMAGE_MODEL_ROOT ?= build/bench/image-model
bench-image: $(VENV)/.installed ## an image model (MobileNetV2, random weights, no download): JSON against binary tensors and the runtime's limit
	$(PY) -m model.examples --out $(EXAMPLES_DIR) --image
	$(PY) -m model --output $(IMAGE_MODEL_ROOT) --source $(EXAMPLES_DIR)/mobilenet.keras --name mobilenet
	$(PY) -m serving.tools.bench.json_paths --model-root $(IMAGE_MODEL_ROOT)

bench-capture: $(VENV)/.installed model ## payload capture's cost to clients: throughput and p99 at sample rates 0, 0.1 and 1
	$(PY) -m serving.tools.bench.capture --model-root $(MODEL_ROOT) --model-name $(MODEL_NAME) --model-version $(MODEL_VERSION)

bench-shadow: $(VENV)/.installed model ## mirroring to a shadow model's cost to clients: throughput and p99 at sample rates 0, 0.1 and 1
	$(PY) -m serving.tools.bench.shadow --model-root $(MODEL_ROOT) --model-name $(MODEL_NAME) --model-version $(MODEL_VERSION)

bench-drift: $(INFRA_READY) model ## the drift report's time over a million captured records
	$(INFRA_PY) -m drift.bench --reference $(MODEL_ROOT)/$(MODEL_NAME)/$(MODEL_VERSION)

REFERENCE ?= $(MODEL_ROOT)/$(MODEL_NAME)/$(MODEL_VERSION)
RECORDS ?=
HOURS ?= 24
MAX_PSI ?= 0.2
DRIFT_DIR ?= build/drift
LOG_GROUP ?= /aws/lambda/twinserve-$(MODEL_NAME)-$(ENV)
drift: $(INFRA_READY) ## captured records against the model's reference.json: RECORDS=<log files>, ARCHIVE=s3://… or ENV's function log group, over HOURS; exit 1 on drift
	$(INFRA_PY) -m drift --reference $(REFERENCE) --max-psi $(MAX_PSI) --out $(DRIFT_DIR)/$(ENV).md \
	  $(if $(RECORDS),$(addprefix --records ,$(RECORDS)),$(if $(ARCHIVE),--archive $(ARCHIVE),--log-group $(LOG_GROUP)) --hours $(HOURS))

lock: ## re-resolve every lock from its .in file, with hashes (installs verify every download)
	cd tests && ../$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 --generate-hashes -o requirements.txt --no-header -q
	cd infra && ../$(VENV)/bin/uv pip compile requirements.in --python-version 3.11 --generate-hashes -o requirements.txt --no-header -q
	for f in serving/requirements-litert serving/requirements-tensorflow serving/requirements-http serving/requirements-lambda-ric; do \
	  $(VENV)/bin/uv pip compile $$f.in --universal --generate-hashes --python-version 3.11 -c tests/requirements.txt -o $$f.txt --no-header -q; done
	$(VENV)/bin/uv pip compile model/requirements.in --universal --python-version 3.11 -c tests/requirements.txt --generate-hashes -o model/requirements.txt --no-header -q

clean: ## remove build outputs (not the virtualenvs)
	rm -rf build dist
