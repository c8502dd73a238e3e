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

.PHONY: install live test test-fast bench base-skins demo-model demo-facesets eval-facesets demo-eval occlusion-facesets occlusion-model occlusion-eval occlusion-figure gpu-train gpu-bench clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q "$(TORCH)"
	$(BIN)/python -m pip install -q -e ".[$(ORT),train,eval,dev]"
	touch $(STAMP)

install: $(STAMP)

# The app window where a display exists, else the live loop in the terminal (swapcam/start.py).
live: install
	$(BIN)/python -m swapcam.start $(ARGS)

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: install
	$(BIN)/swapcam bench $(ARGS)

# The pretrained base (models/base/base.pt, docs/base.md): a reference-prior model trained on every face of
# ../shared/data that may be used, EXCEPT GRID s4 (the "new identity" of the measurements) and the eval users
# (GRID s26, s27, the helmet selfie). training/base_plan.json lists the facesets, their roles and credits.
# Pretraining resumes from $(WORK)/base_run: run `make base-model` again to continue (BASE_CPU_MINUTES more).
SHARED ?= ../shared/data
WORK ?= workspace
BASE_CPU_MINUTES ?= 60
BASE_FILE ?= models/base/base.pt
BASE_META ?= training/base_meta.json

$(WORK)/fsb_s1/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/video/grid_s1.mp4 --out $(WORK)/fsb_s1 --face-type full --size 192 --every-nth 2
$(WORK)/fsb_london/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/london --out $(WORK)/fsb_london --face-type full --size 192 --max-faces 1
$(WORK)/fsb_canada/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/canada --out $(WORK)/fsb_canada --face-type full --size 192 --max-faces 1
$(WORK)/fsb_lisa/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/lisa --out $(WORK)/fsb_lisa --face-type full --size 192 --max-faces 1
$(WORK)/fsb_congress/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/congress --out $(WORK)/fsb_congress --face-type full --size 192 --max-faces 1

base-facesets: $(foreach f,s1 london canada lisa congress,$(WORK)/fsb_$(f)/faceset.jsonl)

base-model: install base-facesets
	nice -n 19 $(BIN)/swapcam train --pool training/base_plan.json --pool-root $(WORK) --out $(WORK)/base_run \
		--from-scratch --preset prior_fast --resolution 192 --batch-size 16 --lr 3e-4 --threads 1 --workers 0 \
		--cpu-minutes $(BASE_CPU_MINUTES) --save-minutes 10 --preview-every 100 --log-every 20 --no-progress
	$(BIN)/python -m training.base export $(WORK)/base_run --out $(BASE_FILE) --name swapcam-base-v1 --meta $(BASE_META)

# Donor skins for the base (models/base/skins, ignored by git; its README credits them): London Set neutral stills
# and the Canada set, donors of the pasted skin a fine-tune may use (--cross-identity). Built only when missing.
base-skins: $(WORK)/fsb_london/faceset.jsonl $(WORK)/fsb_canada/faceset.jsonl
	test -f models/base/skins/faceset.jsonl || $(BIN)/python -m training.skin_pool build $(WORK)/fsb_london \
		$(WORK)/fsb_canada --out models/base/skins --pattern '_03-|^[0-9]+[fm]-' --quality 90

# Rebuild the shipped demo model (models/demo.onnx) from ../shared/data, as it was made: the study's winner
# (docs/study.md), a reference-prior model at 192 px on full-face 256 px facesets, trained from scratch to its
# 20 CPU-minute point (361 steps, about 25 minutes on 1 thread; the study found identity best there). The dst side
# leaves the helmet selfie out: it is the held-out clip the model card's second eval row is measured on. (Rebuilt
# from the pretrained base for 10 CPU-minutes it scored 0.01-0.04 farther from s1: docs/base.md, third session.)
DEMO_STEPS ?= 361
DEMO_THREADS ?= 1
DEMO_IDENTITY := GRID corpus speaker s1
DEMO_CONSENT := GRID audiovisual sentence corpus, published for research under CC BY 4.0 (Cooke, Barker, Cunningham, Shao 2006, doi:10.5281/zenodo.3625687); no individual consent to face swapping was recorded beyond that licence
DEMO_CREDITS := src: GRID corpus speaker s1, CC BY 4.0, Cooke et al. (2006) JASA 120(5):2421-2424, doi:10.5281/zenodo.3625687 (clips joined, audio dropped). dst: GRID speaker s4 (same licence); Face Research Lab London Set, CC BY 4.0, DeBruine & Jones (2017) doi:10.6084/m9.figshare.5047666 (resized); webmorphR.stim Lisa stills, CC BY 4.0, Lisa DeBruine (resized); webmorphR.stim 'canada' set (30 young adults, one still each), CC BY 4.0, DeBruine & Jones doi:10.6084/m9.figshare.4220517.v1 (resized); official portraits of members of the US Congress (congresses 100-119) from the Biographical Directory of the United States Congress, as collected by the voteview project (UCLA) member_photos repository, believed public domain, dst side only (never shown)
DEMO_TRAIN_ARGS := --from-scratch --preset prior --resolution 192 --batch-size 16 --lr 3e-4 --workers 0

# The demo model's facesets (extraction resumes, so a second run only checks them).
$(WORK)/fs_s1_full256/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/video/grid_s1.mp4 --out $(WORK)/fs_s1_full256 --face-type full --size 256

$(WORK)/fs_dst_full256/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/london $(SHARED)/stills/lisa $(SHARED)/stills/canada $(SHARED)/stills/congress \
		--out $(WORK)/fs_dst_full256 --face-type full --size 256 --max-faces 1
	$(BIN)/swapcam extract $(SHARED)/video/grid_s4.mp4 --out $(WORK)/fs_dst_full256 --face-type full --size 256 --every-nth 5

# The eval's target and gallery facesets (identity references for `swapcam eval`, never trained on by the gallery).
$(WORK)/fs_grid_s1/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/video/grid_s1.mp4 --out $(WORK)/fs_grid_s1 --size 128

$(WORK)/fs_dst_mix/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/london $(SHARED)/stills/lisa $(SHARED)/video/helmet_selfie.mp4 \
		--out $(WORK)/fs_dst_mix --size 128 --max-faces 1
	$(BIN)/swapcam extract $(SHARED)/video/grid_s4.mp4 --out $(WORK)/fs_dst_mix --size 128 --every-nth 5

demo-facesets: $(WORK)/fs_s1_full256/faceset.jsonl $(WORK)/fs_dst_full256/faceset.jsonl
eval-facesets: $(WORK)/fs_grid_s1/faceset.jsonl $(WORK)/fs_dst_mix/faceset.jsonl

demo-model: install demo-facesets
	$(BIN)/swapcam train --src $(WORK)/fs_s1_full256 --dst $(WORK)/fs_dst_full256 --out $(WORK)/demo_run $(DEMO_TRAIN_ARGS) \
		--threads $(DEMO_THREADS) --steps $(DEMO_STEPS) --identity "$(DEMO_IDENTITY)"
	$(BIN)/swapcam export $(WORK)/demo_run --out models/demo.onnx --fp16 --force --identity "$(DEMO_IDENTITY)" \
		--consent "$(DEMO_CONSENT)" --credits "$(DEMO_CREDITS)"

# The shipped model's eval on the unseen GRID speaker s26, with the one-photo swap as the reference row.
DEMO_REF_PHOTO ?= $(WORK)/s1_ref.png
demo-eval: install eval-facesets
	$(BIN)/python -c "import cv2; c = cv2.VideoCapture('$(SHARED)/video/grid_s1.mp4'); \
		c.set(cv2.CAP_PROP_POS_FRAMES, 1258); ok, f = c.read(); assert ok and cv2.imwrite('$(DEMO_REF_PHOTO)', f)"
	$(BIN)/swapcam eval $(SHARED)/video/grid_s26.mp4 --model models/demo.onnx --target $(WORK)/fs_grid_s1 \
		--gallery $(WORK)/fs_dst_mix --reference $(DEMO_REF_PHOTO) --out $(WORK)/demo_eval

# The occlusion model (models/occlusion.onnx), as it was made: full-face 128 px facesets of everyone in
# ../shared/data except the occlusion eval's users (GRID s26, s27, the helmet selfie); a first model on the faces
# without glasses (stills, GRID s1 and s4) finds the Congress sitters who wear glasses, whose eye band the
# second model's loss then ignores. Both train on 1 thread (nice it: the CPU is shared).
OCC := $(WORK)/occ
OCC_FACESETS := $(OCC)/fs_stills $(OCC)/fs_congress $(OCC)/fs_grid_s1 $(OCC)/fs_grid_s4
OCC_FIRST_STEPS ?= 1500
OCC_STEPS ?= 5000
OCC_CREDITS := Faces: Face Research Lab London Set, CC BY 4.0, DeBruine & Jones (2017) doi:10.6084/m9.figshare.5047666; webmorphR.stim Lisa stills and 'canada' set, CC BY 4.0, DeBruine & Jones doi:10.6084/m9.figshare.4220517.v1; GRID corpus speakers s1 and s4, CC BY 4.0, Cooke et al. (2006) doi:10.5281/zenodo.3625687; official portraits of members of the US Congress from the Biographical Directory of the United States Congress, as collected by the voteview project (UCLA) member_photos repository, believed public domain, used as training data only (all resized; occluders synthetic)

$(OCC)/fs_stills/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/london $(SHARED)/stills/lisa $(SHARED)/stills/canada --out $(OCC)/fs_stills \
		--face-type full --size 128 --max-faces 1
$(OCC)/fs_congress/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/stills/congress --out $(OCC)/fs_congress --face-type full --size 128 --max-faces 1
$(OCC)/fs_grid_%/faceset.jsonl: | install
	$(BIN)/swapcam extract $(SHARED)/video/grid_$*.mp4 --out $(OCC)/fs_grid_$* --face-type full --size 128 --every-nth 4

occlusion-facesets: $(addsuffix /faceset.jsonl,$(OCC_FACESETS))

occlusion-model: install occlusion-facesets
	$(BIN)/swapcam occlusion-train --facesets $(OCC)/fs_stills $(OCC)/fs_grid_s1 $(OCC)/fs_grid_s4 --out $(OCC)/run_first \
		--steps $(OCC_FIRST_STEPS)
	$(BIN)/swapcam occlusion-export $(OCC)/run_first --out $(OCC)/first.onnx --credits "$(OCC_CREDITS)"
	$(BIN)/swapcam occlusion-train --facesets $(OCC_FACESETS) --weights 0.35 0.35 0.15 0.15 --out $(OCC)/run \
		--steps $(OCC_STEPS) --glasses-model $(OCC)/first.onnx
	$(BIN)/swapcam occlusion-export $(OCC)/run --out models/occlusion.onnx --credits "$(OCC_CREDITS)"

# The occlusion eval on the held-out clips, both swap kinds, occlusion off (today's swap) and on
occlusion-eval: install
	for clip in grid_s27:150 grid_s26:300 helmet_selfie:300; do for m in models/photos/london_063.jpg models/demo.onnx; do \
		for occ in off on; do $(BIN)/swapcam eval $(SHARED)/video/$${clip%%:*}.mp4 --model $$m --occluders all \
			--occlusion $$occ --max-frames $${clip##*:} --no-progress \
			--out $(OCC)/eval/$${clip%%:*}_$$(basename $${m%.*})_$$occ; done; done; done

occlusion-figure: install
	$(BIN)/python -m measure.occlusion_figure --out docs/occlusion_helmet.png

# GPU runs, in two halves (README, "GPU"). Here: pack what the GPU machine needs into ignored folders
# and print the command to run there. GPU_SRC/GPU_DST: facesets (default: the demo recipe's);
# GPU_RESUME: a run folder to continue; GPU_MINUTES: training minutes; GPU_BENCH: presets timed first.
GPU_SRC ?= $(WORK)/fs_s1_full256
GPU_DST ?= $(WORK)/fs_dst_full256
GPU_RESUME ?=
GPU_MINUTES ?= 6
GPU_BENCH ?= df:256:64
GPU_TRAIN_ARGS ?= --preset prior --resolution 192 --batch-size 128 --lr 3e-4 --identity "$(DEMO_IDENTITY)"

gpu-train: install $(GPU_SRC)/faceset.jsonl $(GPU_DST)/faceset.jsonl
	$(BIN)/python -m training.gpu_run pack --src $(GPU_SRC) --dst $(GPU_DST) --out .gpu/train $(GPU_TRAIN_ARGS) \
		--minutes $(GPU_MINUTES) --bench "$(GPU_BENCH)" $(if $(GPU_RESUME),--resume $(GPU_RESUME))

gpu-bench: install
	$(BIN)/python -m measure.gpu_bench pack --wheels .whl

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info
