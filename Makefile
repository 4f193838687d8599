# Two commands from a fresh clone: `make demo` and `make test`.
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
DEMO_OUT ?= runs/demo
# Parallel test workers; CI machines have 2 cores.
TEST_WORKERS ?= 2
# PyTorch build: cpu (default, the CPU wheel) or a CUDA build named as on
# https://download.pytorch.org/whl/ (cu126, cu128, ...): `make demo TORCH_BUILD=cu126`.
# A CUDA build gets its own stamp, so naming one on an installed .venv swaps torch in place.
TORCH_BUILD ?= cpu
TORCH_VERSION := 2.13.0
ifeq ($(TORCH_BUILD),cpu)
TORCH_PIP := "torch==$(TORCH_VERSION)"
STAMP   := $(VENV)/.installed
else
# the +local tag: pip would count an installed 2.13.0+cpu as "torch==2.13.0" and keep it
TORCH_PIP := "torch==$(TORCH_VERSION)+$(TORCH_BUILD)" --index-url https://download.pytorch.org/whl/$(TORCH_BUILD)
STAMP   := $(VENV)/.installed-$(TORCH_BUILD)
endif

.PHONY: demo test install clean bench

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch first, the build TORCH_BUILD names: an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet $(TORCH_PIP)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/genmed demo --out $(DEMO_OUT)

test: $(STAMP)
	bash scripts/browser_deps.sh || true
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadgroup --durations=15

bench: $(STAMP)
	for f in benchmarks/*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) runs build *.egg-info
