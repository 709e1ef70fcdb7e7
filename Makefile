# helion-bench. `make bench` and `make test` do all their own set-up (venv + pinned installs), idempotently.
SHELL := /bin/bash
PYTHON ?= python3
CATEGORY ?= all
KERNEL ?=
MODEL ?=
IMPL ?=
DTYPE ?=
ARGS ?=
# offline machines: a folder of wheels to install from (no index), e.g. WHEELS=.whl
WHEELS ?=

TEST_VENV := .venv
BENCH_VENV := .venv-bench
PIP_OFFLINE := $(if $(WHEELS),--no-index --find-links $(WHEELS),)

SELECT := --category $(CATEGORY) $(if $(KERNEL),--kernel $(KERNEL)) $(if $(MODEL),--model $(MODEL)) \
          $(if $(IMPL),--impl $(IMPL)) $(if $(DTYPE),--dtype $(DTYPE))

.PHONY: test lint bench bench-quick upstreams tune report coverage list check nightly clean gpu

# GPU targets stop here on a machine without an NVIDIA driver, before installing a CUDA torch they cannot use
gpu:
	@command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 || { \
	  echo "error: no NVIDIA GPU here (nvidia-smi missing or failing): make bench/check/tune need one;" \
	       "make report rebuilds reports from committed results without one" >&2; exit 2; }

$(TEST_VENV)/.stamp: requirements/test.txt
	test -x $(TEST_VENV)/bin/python || $(PYTHON) -m venv $(TEST_VENV)
	$(TEST_VENV)/bin/python -m pip install -q $(PIP_OFFLINE) -r requirements/test.txt
	touch $@

# The bench venv sees the machine's CUDA torch (--system-site-packages); torch is installed only if missing.
$(BENCH_VENV)/.stamp: requirements/bench.txt requirements/upstream-runtime.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv --system-site-packages $(BENCH_VENV)
	# when $(PYTHON) is itself a venv (GPU images often ship torch in one), --system-site-packages only reaches
	# the base interpreter: a .pth file makes the creating interpreter's packages (its CUDA torch) visible too
	$(PYTHON) -c "import site; print('\n'.join(site.getsitepackages()))" > \
	  "$$($(BENCH_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/_parent_site.pth"
	$(BENCH_VENV)/bin/python -c "import torch" 2>/dev/null || $(BENCH_VENV)/bin/python -m pip install -q $(PIP_OFFLINE) torch
	$(BENCH_VENV)/bin/python -m pip install -q $(PIP_OFFLINE) -r requirements/bench.txt
	# the upstream kernel modules' small runtime deps, without their serving stacks' dependency trees
	$(BENCH_VENV)/bin/python -m pip install -q $(PIP_OFFLINE) --no-deps -r requirements/upstream-runtime.txt
	touch $@

# the two small upstream trees (fla-core, sageattention: ~1 MB) let the adapter tests import real upstream code;
# the big ones (vLLM, SGLang) are left to `make bench`, and their import tests skip with the command to run
test: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python scripts/fetch_upstreams.py --only fla sageattention $(if $(WHEELS),--offline $(WHEELS)) \
	  || echo "warning: could not fetch fla/sageattention: their import tests will skip"
	$(TEST_VENV)/bin/python -m ruff check .
	$(TEST_VENV)/bin/python -m pytest -q $(ARGS)

lint: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python -m ruff check .

# python-only trees of the pinned upstream releases (.up/); skipped when already built for this lock
# An upstream that cannot be fetched is not fatal: its rows say `unavailable: <reason>` and the sweep goes on.
upstreams: $(BENCH_VENV)/.stamp
	$(BENCH_VENV)/bin/python scripts/fetch_upstreams.py $(if $(WHEELS),--offline $(WHEELS)) \
	  || echo "warning: some upstreams could not be fetched (see above); their rows will be 'unavailable'"

bench: gpu upstreams
	$(BENCH_VENV)/bin/python -m harness bench $(SELECT) $(ARGS)

bench-quick: gpu upstreams
	$(BENCH_VENV)/bin/python -m harness bench $(SELECT) --quick $(ARGS)

# kernel x provider matrix on any machine: no GPU, no network, no upstream tree needed (it says which trees are
# missing and whether a GPU is here); uses the bench venv where one exists, else the CPU test venv
LIST_VENV = $(if $(wildcard $(BENCH_VENV)/.stamp),$(BENCH_VENV),$(TEST_VENV))
list:
	@test -f $(LIST_VENV)/.stamp || $(MAKE) --no-print-directory $(TEST_VENV)/.stamp
	$(LIST_VENV)/bin/python -m harness list

# correctness-only sweep of every adapter on one small shape -> results/<gpu>/availability.{csv,md} (GPU)
check: gpu upstreams
	$(BENCH_VENV)/bin/python -m harness check --all $(ARGS)

# refresh the shipped Helion configs (GPU; autotunes: never part of make bench)
tune: gpu $(BENCH_VENV)/.stamp
	$(BENCH_VENV)/bin/python scripts/tune.py $(if $(KERNEL),--kernel $(KERNEL)) $(if $(MODEL),--model $(MODEL)) $(ARGS)

# rebuild speedup.md, plots and report.html of every committed run (no GPU needed); deterministic: on a clean
# checkout it leaves `git status` clean (each run's recorded --against base is reused, no file is deleted)
report: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python -m harness report --all

# per category: how many of the Helion rows a full bench plans are gated and timed against the best upstream, from
# the committed runs of one GPU (no GPU needed; ARGS="--gpu h100 --per-spec --quick --runs RUN...")
coverage: $(TEST_VENV)/.stamp
	$(TEST_VENV)/bin/python -m harness coverage $(ARGS)

nightly: gpu upstreams
	bash scripts/nightly.sh

clean:
	rm -rf $(TEST_VENV) $(BENCH_VENV) .cache
