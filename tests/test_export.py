"""Export to ONNX and TorchScript through the real CLI, and the onnxruntime backend on real photos."""

import json

import numpy as np
import onnx
import pytest
import torch

import keypoints
from conftest import PHOTOS, run_script, tiny_overrides
from keypoints.training import export, quantize
from keypoints.core import geometry
from keypoints.core.errors import KeypointsError
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_MODEL
from keypoints.training.module import load_checkpoint
from keypoints.inference import cpu
from keypoints.inference.onnx_runtime import OnnxPredictor
from keypoints.inference.cpu import QUANTIZATION_KEY, cpu_has_vnni


@pytest.fixture(scope="module")
def module(tiny_checkpoint):
    return load_checkpoint(tiny_checkpoint)


@pytest.fixture(scope="module")
def exported(tiny_checkpoint, tmp_path_factory) -> dict:
    """Both formats, each written by scripts/export.py to its default place (the run's folder)."""
    runs = tmp_path_factory.mktemp("export")
    for fmt in ("onnx", "torchscript"):
        proc = run_script("export.py", f"ckpt_path={tiny_checkpoint}", f"format={fmt}", f"hydra.run.dir={runs / fmt}")
        assert proc.stderr.count("\n") <= 1  # no exporter chatter
    return {"onnx": runs / "onnx" / "model.onnx", "torchscript": runs / "torchscript" / "model.pt"}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_metadata_round_trips(exported, module, tiny_checkpoint, fmt):
    meta = export.read_metadata(exported[fmt])
    size = module.hparams.input_size
    assert meta["input_size"] == size and meta["channels"] == 1 and meta["num_points"] == 68
    assert meta["data_config"] == {"eval_transform": dict(module.hparams.data_config["eval_transform"])}
    assert meta["checkpoint"] == str(tiny_checkpoint)
    # the recorded normalisation is geometry.normalize's
    corner = np.array([[0.0, size]])
    norm = meta["keypoint_normalization"]
    np.testing.assert_allclose((corner - norm["centre"]) / norm["unit"], geometry.normalize(corner, size))


@pytest.mark.parametrize("batch", [1, 3])
def test_exported_models_match_eager_torch_at_any_batch_size(exported, module, batch):
    size = module.hparams.input_size
    images = np.random.default_rng(batch).random((batch, 1, size, size), dtype=np.float32)
    with torch.no_grad():
        eager = module(torch.from_numpy(images)).numpy()
    onnx_out = OnnxPredictor.from_file(exported["onnx"])(images)
    traced, _ = export.load_torchscript(exported["torchscript"])
    with torch.no_grad():
        script_out = traced(torch.from_numpy(images)).numpy()
    for out in (onnx_out, script_out):
        assert out.shape == (batch, 68, 2) and out.dtype == np.float32
        assert np.abs(out - eager).max() < 1e-4


def test_onnxruntime_detector_finds_the_same_faces_and_keypoints(module):
    by_torch, by_onnx = keypoints.Detector(module), keypoints.Detector(module, backend="onnxruntime")
    assert isinstance(by_onnx.predictor, OnnxPredictor)
    for name in ("obamas.jpg", "the_beatles.jpg"):
        expected, faces = by_torch(PHOTOS / name), by_onnx(PHOTOS / name)
        assert len(faces) == len(expected) > 0
        assert [f.box for f in faces] == [f.box for f in expected]
        assert max(np.abs(f.keypoints - e.keypoints).max() for f, e in zip(faces, expected)) < 1e-3


def test_an_exported_face_model_file_is_a_detector_on_its_own(tiny_face_checkpoint, tmp_path):
    """A .onnx from export carries what the Detector needs (input size, eval pipeline, face frame):
    `ckpt_path=model.onnx` detects like the checkpoint it came from, refinement and flip included."""
    path = export.export(load_checkpoint(tiny_face_checkpoint), tmp_path / "face.onnx", "onnx")
    from_file, from_ckpt = keypoints.Detector.from_checkpoint(path), keypoints.Detector.from_checkpoint(tiny_face_checkpoint)
    assert from_file.module is None and from_file.frame.scale == from_ckpt.frame.scale
    faces, expected = from_file(PHOTOS / "obamas.jpg"), from_ckpt(PHOTOS / "obamas.jpg")
    assert [f.box for f in faces] == [f.box for f in expected] and len(faces) == 2
    assert max(np.abs(f.keypoints - e.keypoints).max() for f, e in zip(faces, expected)) < 1e-3


def test_int8_export_detects_like_its_checkpoint(tiny_face_checkpoint, tiny_root, tmp_path):
    """quantize=int8 through the real CLI: int8 convolutions, ranges calibrated on the crops the
    Detector cuts from the data set's training photos, the keypoints metadata kept, and the file
    detects like the checkpoint it came from."""
    out = tmp_path / "face.int8.onnx"
    proc = run_script("export.py", f"ckpt_path={tiny_face_checkpoint}", "quantize=int8", f"paths.data_dir={tiny_root}",
                      "calibration.photos=6", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}")
    assert "int8 onnx model" in proc.stdout and proc.stderr.count("\n") <= 1
    ops = {node.op_type for node in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops
    meta = export.read_metadata(out)
    assert meta["architecture"] == "ResNetRegressor" and meta["checkpoint"] == str(tiny_face_checkpoint)
    assert json.loads(meta_props(out)[QUANTIZATION_KEY])["percentile"] == 99.99
    int8, fp32 = keypoints.Detector.from_checkpoint(out), keypoints.Detector.from_checkpoint(tiny_face_checkpoint)
    faces, expected = int8(PHOTOS / "obamas.jpg"), fp32(PHOTOS / "obamas.jpg")
    assert [f.box for f in faces] == [f.box for f in expected] and len(faces) == 2
    for f, e in zip(faces, expected):  # int8 rounding moves points, by well under 2% of the face
        assert np.abs(f.keypoints - e.keypoints).mean() < 0.02 * f.box[2]


def test_a_mobile_model_trains_exports_to_int8_and_detects(tiny_root, tmp_path):
    """model=mobile (depthwise convolutions) through the whole path a user takes: a tiny run, the int8
    export, and the Detector on that file, with the float checkpoint's faces and points within int8's rounding."""
    run_script("train.py", "experiment=face_resnet", "model=mobile", "logger=none", "trainer.max_epochs=1", "test=false",
               *tiny_overrides(tiny_root, tmp_path / "run"))
    ckpt, out = tmp_path / "run" / "checkpoints" / "last.ckpt", tmp_path / "mobile.int8.onnx"
    run_script("export.py", f"ckpt_path={ckpt}", "quantize=int8", f"paths.data_dir={tiny_root}", "calibration.photos=6",
               f"output={out}", f"hydra.run.dir={tmp_path / 'export'}")
    assert export.read_metadata(out)["architecture"] == "MobileRegressor"
    int8, fp32 = keypoints.Detector.from_checkpoint(out), keypoints.Detector.from_checkpoint(ckpt)
    faces, expected = int8(PHOTOS / "obamas.jpg"), fp32(PHOTOS / "obamas.jpg")
    assert [f.box for f in faces] == [f.box for f in expected] and len(faces) == 2
    for f, e in zip(faces, expected):
        assert np.abs(f.keypoints - e.keypoints).mean() < 0.02 * f.box[2]


def meta_props(path) -> dict:
    return {p.key: p.value for p in onnx.load(str(path)).metadata_props}


def activation_scales(path) -> dict:
    """Each quantized activation's scale (QuantizeLinear nodes not fed by a weight) in an int8 file."""
    graph = onnx.load(str(path)).graph
    values = {init.name: onnx.numpy_helper.to_array(init) for init in graph.initializer}
    return {n.input[0]: float(values[n.input[1]]) for n in graph.node if n.op_type == "QuantizeLinear" and n.input[0] not in values}


def test_int8_ranges_leave_out_the_rarest_activations(tiny_face_checkpoint, tmp_path):
    """A percentile (99.99, the export's default) narrows the activations' ranges against min-max
    (None), so int8's levels fall where the values are; the metadata says which was used."""
    detector = keypoints.Detector.from_checkpoint(tiny_face_checkpoint)
    batches = quantize.calibration_inputs(detector, [PHOTOS / "obamas.jpg", PHOTOS / "the_beatles.jpg"])
    source = export.export(detector.module, tmp_path / "float.onnx", "onnx")
    scales = {}
    for percentile in (99.99, None):
        out = quantize.quantize(source, tmp_path / f"{percentile}.onnx", batches, percentile=percentile)
        scales[percentile] = activation_scales(out)
        assert json.loads(meta_props(out)[QUANTIZATION_KEY])["percentile"] == percentile
    narrow, full = scales[99.99], scales[None]
    assert narrow.keys() == full.keys() and len(full) > 5
    assert all(narrow[k] <= full[k] * (1 + 1e-6) for k in full) and sum(narrow[k] < 0.99 * full[k] for k in full) >= len(full) // 2


def test_the_shipped_int8_model_is_the_shipped_model_quantized_on_any_x86_cpu():
    """backend=onnxruntime-int8 with no checkpoint runs the committed int8 copy of the shipped model:
    made from it, and giving its keypoints to within a small share of the eye distance on whatever
    CPU runs the test (7-bit weights: no VNNI needed, so the bound holds on AVX2-only CPUs too)."""
    assert export.read_metadata(DEFAULT_INT8_MODEL)["checkpoint"].startswith(DEFAULT_MODEL.name)
    assert json.loads(meta_props(DEFAULT_INT8_MODEL)[QUANTIZATION_KEY])["reduce_range"] is True
    int8 = keypoints.Detector.from_checkpoint(backend="onnxruntime-int8")
    fp32 = keypoints.Detector(backend="onnxruntime")
    assert int8.module is None and isinstance(int8.predictor, OnnxPredictor)
    for name in ("obamas.jpg", "the_beatles.jpg"):
        faces, expected = int8(PHOTOS / name), fp32(PHOTOS / name)
        assert [f.box for f in faces] == [f.box for f in expected]
        for f, e in zip(faces, expected):
            eyes = np.linalg.norm(e.keypoints[45] - e.keypoints[36])
            error = np.linalg.norm(f.keypoints - e.keypoints, axis=1).mean()
            assert error < 0.02 * eyes, f"{name}: int8 {error:.1f} px off float (CPU has VNNI: {cpu_has_vnni()})"


def test_a_full_range_int8_file_is_refused_on_an_x86_cpu_without_vnni(tiny_face_checkpoint, tiny_root, tmp_path, monkeypatch):
    """quantize=int8 reduce_range=false writes 8-bit weights, which saturate without VNNI: loading
    such a file there is one line naming it; with VNNI (or off x86) it runs."""
    out = tmp_path / "full.int8.onnx"
    run_script("export.py", f"ckpt_path={tiny_face_checkpoint}", "quantize=int8", "reduce_range=false",
               f"paths.data_dir={tiny_root}", "calibration.photos=3", f"output={out}", f"hydra.run.dir={tmp_path / 'run'}")
    monkeypatch.setattr(cpu, "is_x86", lambda: True)
    monkeypatch.setattr(cpu, "cpu_has_vnni", lambda: False)
    with pytest.raises(KeypointsError, match=f"{out}: int8 model with 8-bit weights, which saturate on this CPU"):
        OnnxPredictor.from_file(out)
    monkeypatch.setattr(cpu, "cpu_has_vnni", lambda: True)
    assert OnnxPredictor.from_file(out)(np.zeros((1, 1, 112, 112), np.float32)).shape == (1, 68, 2)


def test_vnni_is_read_from_the_cpu_flags(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512bw\n")
    assert not cpu_has_vnni(cpuinfo)
    cpuinfo.write_text("processor : 0\nflags : fpu sse avx2 avx512f avx512_vnni avx512_bf16\n")
    assert cpu_has_vnni(cpuinfo)
    assert not cpu_has_vnni(tmp_path / "missing")


@pytest.mark.parametrize("script, overrides, message", [
    ("export.py", ["ckpt_path={tmp}/missing.ckpt"], "{tmp}/missing.ckpt: checkpoint not found"),
    ("export.py", ["ckpt_path={ckpt}", "format=tflite"], "format='tflite': unknown export format"),
    ("detect.py", ["ckpt_path={ckpt}", f"input={PHOTOS / 'obamas.jpg'}", "output={tmp}/out", "backend=tensorrt"],
     "backend='tensorrt': must be one of auto, torch, onnxruntime, onnxruntime-int8"),
    ("detect.py", ["ckpt_path={ckpt}", f"input={PHOTOS / 'obamas.jpg'}", "output={tmp}/out", "backend=onnxruntime-int8"],
     "backend=onnxruntime-int8 runs an int8 .onnx file, not a checkpoint"),
    ("export.py", ["ckpt_path={ckpt}", "quantize=int4"], "quantize='int4': unknown"),
    ("export.py", ["ckpt_path={ckpt}", "quantize=int8", "format=torchscript"], "quantize=int8 needs format=onnx"),
    ("export.py", ["ckpt_path={ckpt}", "quantize=int8", "calibration.percentile=100"], "calibration.percentile=100: a number between 50 and 100"),
    ("export.py", ["ckpt_path={ckpt}", "quantize=int8", "paths.w300_dir={tmp}/nowhere"],
     "{tmp}/nowhere/train_keypoints.csv: annotation CSV not found"),
])  # fmt: skip
def test_bad_inputs_are_one_line_errors(tiny_checkpoint, tmp_path, script, overrides, message):
    fill = {"tmp": tmp_path, "ckpt": tiny_checkpoint}
    proc = run_script(script, *[o.format(**fill) for o in overrides], f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith(f"error: {message.format(**fill)}")


def test_a_bad_model_file_names_the_problem(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(KeypointsError, match="model.onnx: not an ONNX model"):
        OnnxPredictor.from_file(tmp_path / "model.onnx")


def test_export_never_replaces_its_checkpoint_nor_an_existing_file_unasked(tiny_checkpoint, tmp_path):
    ckpt = tmp_path / "model.ckpt"
    ckpt.write_bytes(tiny_checkpoint.read_bytes())
    (tmp_path / "link.onnx").symlink_to(ckpt)
    taken = tmp_path / "taken.onnx"
    taken.write_bytes(b"someone's file")
    run = f"hydra.run.dir={tmp_path / 'run'}"
    for output, message in [(ckpt, "output would overwrite an input"), (tmp_path / "link.onnx", "output would overwrite an input"),
                            (taken, "output= already exists")]:
        for overwrite in ("false", "true") if output != taken else ("false",):
            proc = run_script("export.py", f"ckpt_path={ckpt}", f"output={output}", f"overwrite={overwrite}", run, check=False)
            assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
            assert proc.stderr.startswith(f"error: {output}: {message}")
    assert ckpt.read_bytes() == tiny_checkpoint.read_bytes() and taken.read_bytes() == b"someone's file"
    run_script("export.py", f"ckpt_path={ckpt}", f"output={taken}", "overwrite=true", run)
    assert export.read_metadata(taken)["checkpoint"] == str(ckpt)
    proc = run_script("export.py", f"ckpt_path={ckpt}", "overwrite=yes", run, check=False)
    assert proc.returncode == 2 and "overwrite" in proc.stderr and "true or false" in proc.stderr
