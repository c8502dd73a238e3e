# swapcam: `make live` sets up and runs the live swap; `make test` sets up and runs the tests.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# onnxruntime flavour: cpu or gpu (exactly one is installed; they overwrite each other).
ORT ?= cpu
# torch 2.13.0 is a local CPU build on the CPU machines; a bare `torch` would pull a CUDA build.
TORCH ?= torch==2.13.0
STAMP := $(VENV)/.installed-$(ORT)
ARGS ?=
PYTEST_ARGS ?=

.PHONY: install live test test-fast bench demo-model demo-facesets gpu-train gpu-bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(ORT),train,eval,dev]"
	touch $(STAMP)

install: $(STAMP)

live: install
	$(BIN)/python run_live.py $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/swapcam bench $(ARGS)

# Rebuild the shipped demo model (models/demo.onnx) from ../shared/data, as it was made.
SHARED ?= ../shared/data
WORK ?= workspace
DEMO_MINUTES ?= 110
DEMO_IDENTITY := GRID corpus speaker s1
DEMO_CONSENT := GRID audiovisual sentence corpus, published for research under CC BY 4.0 (Cooke, Barker, Cunningham, Shao 2006, doi:10.5281/zenodo.3625687); no individual consent to face swapping was recorded beyond that licence
DEMO_CREDITS := src: GRID corpus speaker s1, CC BY 4.0, Cooke et al. (2006) JASA 120(5):2421-2424, doi:10.5281/zenodo.3625687 (clips joined, audio dropped). dst: GRID speaker s4 (same licence); Face Research Lab London Set, CC BY 4.0, DeBruine & Jones (2017) doi:10.6084/m9.figshare.5047666 (resized); webmorphR.stim Lisa stills, CC BY 4.0, Lisa DeBruine (resized); helmet selfie video, CC BY 2.0, (c) 2012 Aaron Tang (Flickr 7484448042), rotated by the OpenMPF project

# The demo model's facesets (extraction resumes, so a second run only checks them).
$(WORK)/fs_grid_s1/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/video/grid_s1.mp4 --out $(WORK)/fs_grid_s1 --size 128

$(WORK)/fs_dst_mix/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/london $(SHARED)/stills/lisa $(SHARED)/video/helmet_selfie.mp4 \
		--out $(WORK)/fs_dst_mix --size 128 --max-faces 1
	$(BIN)/swapcam extract $(SHARED)/video/grid_s4.mp4 --out $(WORK)/fs_dst_mix --size 128 --every-nth 5

demo-facesets: $(WORK)/fs_grid_s1/faceset.jsonl $(WORK)/fs_dst_mix/faceset.jsonl

demo-model: install demo-facesets
	$(BIN)/swapcam train --src $(WORK)/fs_grid_s1 --dst $(WORK)/fs_dst_mix --out $(WORK)/demo_run --preset lite \
		--batch-size 16 --lr 3e-4 --threads 2 --minutes $(DEMO_MINUTES) --identity "$(DEMO_IDENTITY)"
	$(BIN)/swapcam export $(WORK)/demo_run --out models/demo.onnx --fp16 --force --identity "$(DEMO_IDENTITY)" \
		--consent "$(DEMO_CONSENT)" --credits "$(DEMO_CREDITS)"

# GPU runs, in two halves (README, "GPU"). Here: pack what the GPU machine needs into ignored folders
# and print the command to run there. GPU_SRC/GPU_DST: facesets (default: the demo recipe's);
# GPU_RESUME: a run folder to continue; GPU_MINUTES: training minutes; GPU_BENCH: presets timed first.
GPU_SRC ?= $(WORK)/fs_grid_s1
GPU_DST ?= $(WORK)/fs_dst_mix
GPU_RESUME ?=
GPU_MINUTES ?= 6
GPU_BENCH ?= df:256:64
GPU_TRAIN_ARGS ?= --preset lite --batch-size 256 --lr 3e-4 --identity "$(DEMO_IDENTITY)"

gpu-train: install $(GPU_SRC)/faceset.jsonl $(GPU_DST)/faceset.jsonl
	$(BIN)/python -m training.gpu_run pack --src $(GPU_SRC) --dst $(GPU_DST) --out .gpu/train $(GPU_TRAIN_ARGS) \
		--minutes $(GPU_MINUTES) --bench "$(GPU_BENCH)" $(if $(GPU_RESUME),--resume $(GPU_RESUME))

gpu-bench: install
	$(BIN)/python -m measure.gpu_bench pack --wheels .whl

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
