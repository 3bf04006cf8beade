"""Photo -> faces -> 68 keypoints each, in the photo's pixels: the public `keypoints.Detector`.

    det = keypoints.Detector()            # the shipped model; or Detector.from_checkpoint("model.ckpt")
    for face in det("photo.jpg"):
        print(face.box, face.score, face.keypoints.shape, face.pose)  # (x, y, w, h), float, (68, 2), Pose

The pipeline itself is the inference wing's (keypoints.inference.detector), which runs model files
under ONNX Runtime with no torch. This class adds what needs the `train` extra: a checkpoint (.ckpt,
its run folder) or a loaded module, run in torch or exported on the fly for ONNX Runtime. torch is
imported only then, so `keypoints detect` on the shipped model never loads it.
"""

from pathlib import Path

from keypoints.core.errors import KeypointsError
from keypoints.inference.faces import load_faces
from keypoints.inference.backends import resolve_backend
from keypoints.inference.config import DEFAULT_FACES, partition, settings_of, split_settings
from keypoints.inference.detector import Detector as FileDetector

TRAIN_EXTRA = "pip install 'keypoints[train]'"


def _torch_side():
    """The checkpoint reader and torch predictors, or one line naming the extra that brings them."""
    try:
        import torch  # noqa: F401
    except ImportError:
        raise KeypointsError(f"a checkpoint (.ckpt) runs in torch, which this install does not have: {TRAIN_EXTRA} "
                             "(or run an exported .onnx: `keypoints export` where torch is installed)") from None
    from keypoints.training import checkpoints, predictors

    return checkpoints, predictors


class Detector(FileDetector):
    """A landmark model behind a face stage: `Detector()(image) -> [Face]` (keypoints.inference.detector).

    `module`: a trained model (keypoints.training.checkpoints.load_model, or a training run's KeypointModule),
    run in torch (`backend` "auto" or "torch") or exported for ONNX Runtime ("onnxruntime"); None: the
    shipped model, in the file `backend` runs (keypoints.inference.backends). `predictor`: any network
    call with `.metadata`, as keypoints.inference.onnx_runtime.OnnxPredictor.from_file gives.
    """

    def __init__(self, module=None, faces=DEFAULT_FACES, predictor=None, **settings):
        self.module = None
        if predictor is None:
            _, runtime = split_settings(settings)  # one line on a wrong one, before torch loads
            kind, _ = resolve_backend(runtime.backend, runtime.device, module)
            if module is not None or kind == "torch":
                checkpoints, predictors = _torch_side()
                self.module = checkpoints.load_model() if module is None else module
                predictor = predictors.make_predictor(self.module.eval(), kind, runtime.device, runtime.session_threads)
        super().__init__(predictor, faces, **settings)

    @classmethod
    def from_checkpoint(cls, path=None, faces=DEFAULT_FACES, **options) -> "Detector":
        """`path`: a .ckpt from scripts/train.py (or its run folder: the best one), a .onnx from `keypoints
        export` (runs under ONNX Runtime, int8 or not as the file was written, no torch needed), or None for
        the shipped model (with backend "auto" on the CPU its int8 or float copy, the faster here:
        keypoints.inference.choice; its int8 copy with "onnxruntime-int8", its float ONNX copy with
        "onnxruntime", the checkpoint with "torch"). `options`: the Detector's settings
        (keypoints.inference.config: refine=2, backend="onnxruntime", ...) and the face stage's knobs
        (min_score=..., max_side=...)."""
        settings, face_options = partition(options)
        faces = load_faces(faces, **face_options)
        if path is None:  # the shipped model, in the file `backend` runs
            return cls(None, faces=faces, **settings)
        if Path(path).suffix == ".onnx":
            return cls.from_file(path, faces=faces, **settings)  # the lean Detector's loader: no torch
        checkpoints, _ = _torch_side()
        return cls(checkpoints.load_model(path), faces=faces, **settings)


def load_detector(cfg, ckpt_path: str | None = None, backend: str | None = None) -> Detector:
    """The CLIs', the server's and the Ray engine's one way to a Detector from a composed config: its
    `detector` node and runtime settings (keypoints.inference.config, each checked); `ckpt_path` None: the
    shipped model; `backend` overrides the config's (export: torch)."""
    settings = settings_of(cfg)
    return Detector.from_checkpoint(ckpt_path, faces=cfg.detector.faces, **{**settings, "backend": backend or settings["backend"]})
