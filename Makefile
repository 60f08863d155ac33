# kfpkit: `make run` runs the demo pipeline locally, `make test` runs every test.
# Both do their own set-up (environments, emulator, demo data, images); Docker must be running.

SHELL := /bin/bash
PY := .venv/bin/python
LOCAL_BASE := kfpkit-local/debian-python:bookworm
# python:3.11-slim for real users; the locally made Debian image where no registry is reachable.
BASE_IMAGE ?= $(shell docker image inspect $(LOCAL_BASE) >/dev/null 2>&1 && echo $(LOCAL_BASE) || echo python:3.11-slim)
export BASE_IMAGE
KFP_OLDEST := 2.7.0
KFP_KUBERNETES_OLDEST := 1.2.0

.PHONY: setup images run run-emulator replay test test-fast compile docs check-compiled push compat bench bench-tfx lint clean kube-apiserver

.venv/.synced: pyproject.toml uv.lock
	uv sync --frozen --quiet
	touch $@

.venvs/emu/.lock-sha256: tools/bqemulator/requirements.lock tools/bqemulator/setup.sh
	tools/bqemulator/setup.sh .venvs/emu

.cache/demo/employment.parquet: .venv/.synced
	$(PY) -m kfpkit.demo_data

# One test environment per runtime image family, made from that family's lock: its
# component tests run on the stack the image ships (KFPKIT_TEST_FAMILY picks them).
RUNTIME_FAMILIES := tfdv train
.venvs/%/.synced: images/%/requirements.lock pyproject.toml
	uv venv -q --allow-existing -p 3.11 .venvs/$*
	VIRTUAL_ENV=.venvs/$* uv pip sync -q --require-hashes \
	  $(foreach p,$(shell cat images/$*/build-from-source 2>/dev/null),--no-binary $(p)) $<
	VIRTUAL_ENV=.venvs/$* uv pip install -q "pytest>=8"
	VIRTUAL_ENV=.venvs/$* uv pip install -q --no-deps -e .
	touch $@

# Regenerates a family's lock file: make lock-tfdv. Locks are complete (every package pinned
# with hashes), so environments and images install them with --no-deps.
lock-%:
	uv pip compile -q --python-version 3.11 --python-platform x86_64-manylinux_2_28 \
	  --generate-hashes $(foreach p,$(shell cat images/$*/build-from-source 2>/dev/null),--no-binary $(p)) \
	  $(shell sed -n 's/^# compile-args://p' images/$*/requirements.in) \
	  -o images/$*/requirements.lock images/$*/requirements.in

setup: .venv/.synced .venvs/emu/.lock-sha256 .cache/demo/employment.parquet \
	$(RUNTIME_FAMILIES:%=.venvs/%/.synced)

images: .venv/.synced
	$(PY) images/build.py

# On-demand variants (several GB): make image-train-gpu
image-%: .venv/.synced
	$(PY) images/build.py $*

# The demo pipeline, then the model it blessed served on 127.0.0.1 with real requests. The
# demo data is split by bigquery_split's embedded engine (the rows BigQuery would give each
# split, in seconds instead of the emulator's half-minute); run-emulator takes the BigQuery
# path on the emulator instead (tests/test_pipeline_docker.py covers it end to end).
run: setup images
	.venv/bin/kfpkit run training --local --data .cache/demo/employment.parquet \
	  --label employed --key id --param 'slice_columns=["SEX", "year"]'
	.venv/bin/kfpkit serve local_outputs/serving/employment --name employment --port 0 \
	  --smoke-test 20 --data .cache/demo/employment.parquet

run-emulator: setup images
	.venv/bin/kfpkit run training --local --emulator

# A real kube-apiserver for the Kubernetes-side tests (Katib, KServe), built once from Debian's
# source package and cached by content hash under .cache/kube-apiserver/ (instant when cached).
kube-apiserver:
	tools/kube-apiserver/build.sh

test: setup images kube-apiserver
	$(PY) -m pytest -q
	set -e; for f in $(RUNTIME_FAMILIES); do KFPKIT_TEST_FAMILY=$$f .venvs/$$f/bin/python -m pytest -q; done

# Tests that need neither Docker nor the emulator.
test-fast: .venv/.synced
	$(PY) -m pytest -q -m "not docker and not emulator"

# Every pipeline for every built-in target (pipelines/targets.yaml): compiled/<pipeline>.yaml
# (local), compiled/<target>/<pipeline>.yaml, and compiled/components/.
compile: .venv/.synced
	.venv/bin/kfpkit compile --out compiled

# compiled/ is what `make compile` writes now (tests/test_compile.py checks the same).
check-compiled: .venv/.synced
	rm -rf build/compiled-check
	.venv/bin/kfpkit compile --out build/compiled-check >/dev/null
	diff -r compiled build/compiled-check || { echo "compiled/ is stale: run make compile"; exit 1; }

# Every image family into a registry a cluster pulls from, tagged by version and content hash;
# the pushed digests go to images/pushed.json (a targets file's images.lock):
# make push REGISTRY=HOST/PATH
push: images
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=HOST/PATH"; exit 2; }
	.venv/bin/kfpkit images push --registry "$(REGISTRY)"

# README.md's table of component inputs and outputs, from the component specs
# (tests/test_component_table.py fails when it is stale).
docs: .venv/.synced
	.venv/bin/kfpkit docs

# Continuous training on the demo years: 2015, then 2016, 2017, 2018 one run a window, then
# the served model's and the frozen 2015 model's scores on each year (kfpkit replay).
replay: setup images
	.venv/bin/kfpkit replay $(REPLAY_ARGS)

# The oldest kfp of the supported range must compile every pipeline too.
compat: .venv/.synced
	uv venv -q --allow-existing -p 3.11 .venvs/kfp-oldest
	VIRTUAL_ENV=.venvs/kfp-oldest uv pip install -q "kfp==$(KFP_OLDEST)" "kfp-kubernetes==$(KFP_KUBERNETES_OLDEST)" "google-cloud-bigquery>=3.11,<4"
	VIRTUAL_ENV=.venvs/kfp-oldest uv pip install -q --no-deps -e .
	.venvs/kfp-oldest/bin/python -m kfpkit.cli compile --out build/compiled-kfp-$(KFP_OLDEST)

# bench_serve.py --experiment: the online experiment's overhead as benchmarks/RESULTS.md
# reports it (16 alternating rounds of 2 s per server).
bench: setup images
	$(PY) benchmarks/bench_split.py
	.venvs/tfdv/bin/python benchmarks/bench_tfdv.py
	.venvs/train/bin/python benchmarks/bench_train.py
	$(PY) benchmarks/bench_streaming.py
	.venvs/train/bin/python benchmarks/bench_tune.py
	.venvs/train/bin/python benchmarks/bench_serve.py
	.venvs/train/bin/python benchmarks/bench_serve.py --experiment --rounds 16 --seconds 2
	.venvs/train/bin/python benchmarks/bench_explain.py
	.venvs/train/bin/python benchmarks/bench_evaluate.py
	$(PY) benchmarks/bench_pipeline.py
	$(PY) benchmarks/bench_continuous.py
	$(PY) benchmarks/bench_online.py
	$(PY) benchmarks/bench_online_replay.py
	.venvs/train/bin/python benchmarks/evaluate_intervals_demo.py
	.venvs/tfdv/bin/python benchmarks/bench_monitor.py

# kfpkit beside TFX 1.16's LocalDagRunner, same rows and model (TFX in its own environment,
# .venvs/tfx-bench, made from benchmarks/tfx/requirements.txt; not part of make bench or CI).
# make bench-tfx BENCH_TFX_ARGS="--sizes 277677 1000000 --rounds 2"
bench-tfx: setup images
	$(PY) benchmarks/bench_vs_tfx.py $(BENCH_TFX_ARGS)

lint: .venv/.synced
	.venv/bin/ruff check .
	.venv/bin/mypy src components pipelines

clean:
	rm -rf build local_outputs .pytest_cache .mypy_cache .ruff_cache
