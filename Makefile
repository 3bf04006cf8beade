# Everyday commands. Data: KEYPOINTS_DATA points at the data set (default data/facial-keypoints).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
export KEYPOINTS_DATA ?= data/facial-keypoints
DATA_URL := https://s3.amazonaws.com/video.udacity-data.com/topher/2018/May/5aea1b91_train-test-data/train-test-data.zip
# CPU-only machines take the CPU wheel of torch; with an NVIDIA driver, pip's default (CUDA) build.
TORCH ?= $(if $(shell command -v nvidia-smi 2>/dev/null),torch,torch==2.13.0)
ARGS ?=

.PHONY: setup demo data train train-short train-300w train-student train-teacher train-mobile test test-slow sweep clean teacher-env pseudo-labels

setup: $(BIN)/python
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[dev]"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# The main job on what ships with the repo: the packaged model behind YuNet on a public-domain photo
# (examples/README.md). No data set, no ../shared, no network.
DEMO_OUT ?= outputs/demo
demo:
	$(BIN)/python scripts/detect.py input=examples/astronaut.jpg hydra.run.dir=$(DEMO_OUT) overwrite=true $(ARGS)
	@echo "keypoints: $(DEMO_OUT)/astronaut.json   drawing: $(DEMO_OUT)/astronaut.png"

# Downloads and unpacks the public archive unless the data set is already there; then checks it.
data:
	@if [ ! -f "$(KEYPOINTS_DATA)/training_frames_keypoints.csv" ]; then \
		mkdir -p "$(KEYPOINTS_DATA)" && \
		curl -fL -o "$(KEYPOINTS_DATA)/archive.zip" "$(DATA_URL)" && \
		unzip -q -o "$(KEYPOINTS_DATA)/archive.zip" -d "$(KEYPOINTS_DATA)" && rm "$(KEYPOINTS_DATA)/archive.zip"; \
	fi
	$(BIN)/python scripts/check_data.py

# A short run that needs only the data set: the teacher's stage 1 (experiment=face_resnet) for 10 epochs (~20 s an epoch on
# 2 AVX-512 cores, docs/RESULTS.md) into outputs/train_short; python scripts/evaluate.py ckpt_path=outputs/train_short
train-short:
	$(BIN)/python scripts/train.py experiment=face_resnet trainer.max_epochs=10 hydra.run.dir=outputs/train_short $(ARGS)

# The first four stages of the shipped model's teacher (docs/MODEL_CARD.md): 1 the labelled faces; 2 fine-tuned
# without mirror images; 3 with the unlabelled wild photos (../shared/data/wild), labelled by teachers:
# 3DDFA_V2 the inner points (../shared/models/3ddfa_v2), stage 2 the jaw; 4 a few epochs on the labelled
# faces alone. Then make train-300w, train-student, train-mobile.
# Any other run: python scripts/train.py ...
RUN ?= outputs/default_model
PSEUDO_ARGS ?=
train:
	$(BIN)/python scripts/train.py experiment=face_resnet hydra.run.dir=$(RUN)/stage1 $(ARGS)
	$(BIN)/python scripts/train.py experiment=face_resnet_finetune init_from=$(RUN)/stage1 hydra.run.dir=$(RUN)/stage2 $(ARGS)
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo PSEUDO_ARGS="teachers.keypoints.ckpt_path=$(RUN)/stage2 $(PSEUDO_ARGS)"
	$(BIN)/python scripts/train.py experiment=face_resnet_wild init_from=$(RUN)/stage2 paths.pseudo_dir=$(RUN)/pseudo \
		paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/stage3 $(ARGS)
	$(BIN)/python scripts/train.py experiment=face_resnet_polish init_from=$(RUN)/stage3 hydra.run.dir=$(RUN)/stage4 $(ARGS)

# Stages 5-6: a model in the Udacity labels' markup (INIT: `make train`'s
# stage 4; the shipped weights started from the previous default, `git show 74c6bcf:src/keypoints/weights/face_resnet.ckpt`)
# moved to the iBUG 300-W markup on 300w/train (../shared/data/300w) and the wild photos: first their inner
# points labelled by 3DDFA_V2 (its jaw is the 3D contour: not taught), 60 epochs; then a self-training
# round, the wild jaw taught by that model, 15 epochs. On 2 AVX-512 cores: labels 2 + 3 min, training
# 39 min (busy) + 5.4 min.
INIT ?= $(RUN)/stage4
train-300w:
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo300w PSEUDO_ARGS="~teachers.keypoints"
	$(BIN)/python scripts/train.py experiment=face_300w init_from=$(INIT) paths.pseudo_dir=$(RUN)/pseudo300w \
		paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/300w $(ARGS)
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo300w_self PSEUDO_ARGS="teachers.keypoints.ckpt_path=$(RUN)/300w"
	$(BIN)/python scripts/train.py experiment=face_300w trainer.max_epochs=15 init_from=$(RUN)/300w \
		paths.pseudo_dir=$(RUN)/pseudo300w_self paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/300w_self $(ARGS)

# Stages 7-9, the shipped model's teacher (the default until 2026-12-05): make train-300w's model at a 96 px input
# (conf/experiment/face_300w_student.yaml), on wild labels whose jaw that model teaches (~14 min of labels, then
# 60 + 40 + 40 epochs: 15 + 13 + 10 min on 2 AVX-512 EPYC cores)
STUDENT_INIT ?= $(RUN)/300w_self
train-student:
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo_student PSEUDO_ARGS="teachers.keypoints.ckpt_path=$(STUDENT_INIT)"
	$(BIN)/python scripts/train.py experiment=face_300w_student init_from=$(STUDENT_INIT) callbacks.ema=null trainer.max_epochs=60 \
		paths.pseudo_dir=$(RUN)/pseudo_student paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/student $(ARGS)
	$(BIN)/python scripts/train.py experiment=face_300w_student init_from=$(RUN)/student optimizer.lr=0.0003 \
		paths.pseudo_dir=$(RUN)/pseudo_student paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/student_ema $(ARGS)
	$(BIN)/python scripts/train.py experiment=face_300w_student init_from=$(RUN)/student_ema optimizer.lr=0.0002 callbacks.ema.decay=0.999 \
		paths.pseudo_dir=$(RUN)/pseudo_student paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/student_ema2 $(ARGS)

# The 160 px teacher (issue 54; conf/experiment/face_300w_teacher.yaml): LFW, AFLW and the Udacity training frames
# relabelled in the 300-W markup by dlib (all points; the `peers` extra), 3DDFA_V2 (inner points) and TEACHER96 (jaw),
# then the ResNet at 160 px from TEACHER96's weights, 30 epochs. TEACHER96: make train-student's model (the shipped
# weights' teacher: `git show 9a7ad44:src/keypoints/weights/face_resnet.ckpt`). Times: docs/RESULTS.md.
TEACHER96 ?= $(RUN)/student_ema2
DLIB_TEACHER := '+teachers.dlib={_target_:keypoints.teachers.others.DlibTeacher,map_points:false}'
train-teacher:
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo_teacher PSEUDO_ARGS="teachers.keypoints.ckpt_path=$(TEACHER96) $(DLIB_TEACHER)"
	$(BIN)/python scripts/pseudo_label.py images=$(KEYPOINTS_DATA)/training output=$(RUN)/pseudo_teacher/udacity.csv overwrite=true \
		hydra.run.dir=$(RUN)/pseudo_teacher/udacity teachers.keypoints.ckpt_path=$(TEACHER96) $(DLIB_TEACHER)
	$(BIN)/python scripts/train.py experiment=face_300w_teacher init_from=$(TEACHER96) paths.pseudo_dir=$(RUN)/pseudo_teacher \
		paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/teacher $(ARGS)

# The shipped model (docs/MODEL_CARD.md): a MobileNet-class network (model=mobile) taught by TEACHER, the
# 96 px ResNet of make train-student (the shipped weights' teacher: `git show 9a7ad44:src/keypoints/weights/face_resnet.ckpt`):
# wild labels by it, 380 epochs from scratch, then 40 with int8's rounding in the loop (~6 + 127 + 20 min on
# 2 AVX-512 EPYC cores). Then `python scripts/ship_model.py ckpt_path=$(RUN)/mobile_qat` and the exports it prints.
TEACHER ?= $(RUN)/student_ema2
train-mobile:
	$(MAKE) pseudo-labels PSEUDO=$(RUN)/pseudo_mobile PSEUDO_ARGS="teachers.keypoints.ckpt_path=$(TEACHER)"
	$(BIN)/python scripts/train.py experiment=face_300w_mobile teacher=$(TEACHER) paths.pseudo_dir=$(RUN)/pseudo_mobile \
		paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/mobile $(ARGS)
	$(BIN)/python scripts/train.py experiment=face_300w_mobile_qat init_from=$(RUN)/mobile teacher=$(TEACHER) \
		paths.pseudo_dir=$(RUN)/pseudo_mobile paths.wild_dir=$(WILD) hydra.run.dir=$(RUN)/mobile_qat $(ARGS)

# MediaPipe 0.10.21 (the last wheel that ships its models; numpy < 2) in its own venv: an optional teacher
# (conf/pseudo_label.yaml says how to add it).
TEACHER_VENV ?= .venv-mediapipe
teacher-env: $(TEACHER_VENV)/bin/python
	$(TEACHER_VENV)/bin/pip install -q "mediapipe==0.10.21" "numpy<2"

$(TEACHER_VENV)/bin/python:
	$(PYTHON) -m venv $(TEACHER_VENV)

# Labels for the unlabelled wild photos, AFLW's and LFW's (conf/data/face_wild.yaml reads them from $(PSEUDO)).
WILD ?= $(or $(KEYPOINTS_WILD),$(or $(KEYPOINTS_SHARED),../shared)/data/wild)
PSEUDO ?= outputs/pseudo
pseudo-labels:
	$(BIN)/python scripts/pseudo_label.py images=$(WILD)/aflw/unlabelled output=$(PSEUDO)/aflw.csv overwrite=true hydra.run.dir=$(PSEUDO)/aflw $(PSEUDO_ARGS)
	$(BIN)/python scripts/pseudo_label.py images=$(WILD)/lfw output=$(PSEUDO)/lfw.csv overwrite=true hydra.run.dir=$(PSEUDO)/lfw $(PSEUDO_ARGS)

# Two workers: most tests wait on a CLI starting up. test-slow: the long end-to-end runs (CI runs both).
test:
	$(BIN)/python -m pytest -q -n 2 -m "not slow" $(ARGS)

test-slow:
	$(BIN)/python -m pytest -q -n 2 -m slow $(ARGS)

sweep:
	$(BIN)/python scripts/train.py -m experiment=dropout_sweep $(ARGS)

# The web demo and REST API on http://127.0.0.1:8000/ (ARGS="port=8080 host=0.0.0.0" to change).
.PHONY: serve
serve:
	$(BIN)/python scripts/serve.py $(ARGS)

clean:
	find outputs -mindepth 1 -not -name .gitkeep -delete
	rm -rf .pytest_cache wandb lightning_logs
