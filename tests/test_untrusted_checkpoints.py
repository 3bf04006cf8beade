"""A checkpoint is a file from outside: reading one never runs code (docs/RELIABILITY.md, issue 25 class 1).

Each hostile checkpoint here would create a marker file if anything it names were called; the
tests check the marker is never there and the error is one line naming what was refused."""

import builtins
import json
import os
import pathlib
import pickle

import numpy as np
import pytest
import torch
from lightning.fabric.utilities.data import AttributeDict
from omegaconf import OmegaConf

from conftest import run_script
from keypoints import Detector
from keypoints.inference.model_files import DEFAULT_INT8_MODEL, DEFAULT_MODEL, DEFAULT_ONNX_MODEL
from keypoints.training.checkpoints import load_model, read_checkpoint
from keypoints.core.errors import KeypointsError
from keypoints.training.module import load_checkpoint, slim_checkpoint


class Payload:
    """Unpickled, it calls `function(*args)`: what a hostile pickle does."""

    def __init__(self, function, *args):
        self.function, self.args = function, args

    def __reduce__(self):
        return self.function, self.args


@pytest.fixture(scope="module")
def shipped() -> dict:
    return torch.load(DEFAULT_MODEL, map_location="cpu", weights_only=True)


def hostile(tmp_path, shipped, name: str, **changes) -> pathlib.Path:
    """The shipped checkpoint with `changes` to its top level or (`hparams=`) its hyper-parameters."""
    hparams = {**shipped["hyper_parameters"], **changes.pop("hparams", {})}
    path = tmp_path / name
    torch.save({**shipped, "hyper_parameters": hparams, **changes}, path)
    return path


def test_the_shipped_model_needs_no_allow_list(shipped):
    """ship_model.py writes tensors and plain containers only: torch's weights-only default reads it."""
    assert isinstance(shipped["hyper_parameters"], dict)
    assert type(load_model().net).__name__ == type(load_checkpoint().net).__name__


def test_a_real_lightning_run_loads_weights_only(tiny_checkpoint):
    model, module = load_model(tiny_checkpoint), load_checkpoint(tiny_checkpoint)
    for key, value in module.net.state_dict().items():
        assert torch.equal(value, model.net.state_dict()[key])


def test_slimmed_checkpoint_is_plain(tiny_checkpoint, tmp_path):
    target = slim_checkpoint(tiny_checkpoint, tmp_path / "slim.ckpt")
    assert set(torch.load(target, weights_only=True)) >= {"state_dict", "hyper_parameters"}  # no allow-list needed


def test_a_float16_slim_checkpoint_loads_into_a_float32_network(tiny_checkpoint, tmp_path):
    """ship_model's weights_dtype=float16 halves the file; loading casts back, the math stays float32."""
    full, half = (slim_checkpoint(tiny_checkpoint, tmp_path / f"{d}.ckpt", d) for d in ("float32", "float16"))
    assert half.stat().st_size < 0.6 * full.stat().st_size
    assert all(v.dtype == torch.float16 for v in torch.load(half, weights_only=True)["state_dict"].values() if v.is_floating_point())
    a, b = load_model(full), load_model(half)
    assert all(p.dtype == torch.float32 for p in b.net.parameters())
    x = torch.rand(2, 1, a.hparams.input_size, a.hparams.input_size)
    with torch.no_grad():
        torch.testing.assert_close(b.net(x), a.net(x), atol=0.02, rtol=0.01)  # float16 rounding of the weights only


def test_old_checkpoints_still_load(tmp_path, shipped):
    """Hyper-parameters as Lightning's AttributeDict with DictConfig parts, the loss at its place before
    the package regrouping, paths and numpy scalars in callbacks' state: what older runs wrote."""
    hparams = AttributeDict(shipped["hyper_parameters"])
    hparams["net"] = OmegaConf.create(hparams["net"])
    hparams["loss"] = {**hparams["loss"], "_target_": "keypoints.losses.WingLoss"}
    path = tmp_path / "old.ckpt"
    torch.save({**shipped, "hyper_parameters": hparams,
                "callbacks": {"ModelCheckpoint": {"dirpath": pathlib.Path("/runs/x"), "best": np.float64(0.1),
                                                  "step": np.int64(3), "scores": np.zeros(2, np.float32)}}}, path)
    assert read_checkpoint(path)["hyper_parameters"]["loss"]["_target_"] == "keypoints.training.losses.WingLoss"
    assert type(load_checkpoint(path).loss_fn).__name__ == "WingLoss"
    assert type(load_model(path).net).__name__ == "MobileRegressor"


@pytest.mark.parametrize("function, offending", [
    (os.system, "system"), (builtins.open, "io.open"), (builtins.eval, "eval"), (builtins.exec, "exec")])
def test_a_pickle_that_calls_anything_is_refused(tmp_path, shipped, function, offending):
    marker = tmp_path / "marker"
    args = {os.system: (f"touch {marker}",), builtins.open: (str(marker), "w"),
            builtins.eval: (f"open({str(marker)!r}, 'w')",), builtins.exec: (f"open({str(marker)!r}, 'w')",)}[function]
    path = hostile(tmp_path, shipped, "evil.ckpt", hparams={"note": Payload(function, *args)})
    for load in (load_model, load_checkpoint, read_checkpoint):
        with pytest.raises(KeypointsError, match=rf"evil.ckpt: refused: its pickle calls \S*{offending}") as error:
            load(path)
        assert "\n" not in str(error.value)
    assert not marker.exists()



def test_a_bare_pickle_is_refused_with_the_reason_and_no_warning(tmp_path, recwarn):
    """Not torch's zip format: a pickle of protocol 4 whose first opcode (FRAME, 149) the weights-only
    unpickler does not take. The reason is in the line, after torch's paragraph on its defaults."""
    path = tmp_path / "bare.ckpt"
    path.write_bytes(pickle.dumps({"state_dict": {}, "hyper_parameters": {}}, protocol=4))
    with pytest.raises(KeypointsError, match=r"^\S*bare.ckpt: not a keypoints checkpoint \(weights-only unpickler: Unsupported operand 149\)$"):
        read_checkpoint(path)
    assert not [w for w in recwarn if "pickle protocol" in str(w.message)]

@pytest.mark.parametrize("target", [
    "os.system", "builtins.exec", "subprocess.run", "torch.load", "torch.nn.Linear", "torch.nn.functional.relu",
    "keypoints.training.models.torch.load", "keypoints.training.data.dataset.Path"])
@pytest.mark.parametrize("where", ["net", "loss", "data_config.eval_frame"])
def test_a_config_naming_anything_but_our_classes_is_refused(tmp_path, shipped, target, where):
    marker = tmp_path / "marker"
    hparams = {k: dict(v) if isinstance(v, dict) else v for k, v in shipped["hyper_parameters"].items()}
    node = {"_target_": target, "_args_": [f"touch {marker}"]}
    if where == "data_config.eval_frame":
        hparams["data_config"]["eval_frame"] = node
    else:
        hparams[where] = node
    path = hostile(tmp_path, shipped, "evil.ckpt", hparams=hparams)
    for load in (load_model, load_checkpoint):
        with pytest.raises(KeypointsError, match=rf"evil.ckpt: (refused: )?its config names _target_='{target}'"):
            load(path)
    assert not marker.exists()


@pytest.mark.parametrize("script, key", [("detect.py", "ckpt_path"), ("export.py", "ckpt_path"), ("evaluate.py", "ckpt_path"),
                                         ("train.py", "init_from"), ("train.py", "resume_from"), ("serve.py", "ckpt_path")])
def test_clis_refuse_a_hostile_checkpoint_in_one_line(tmp_path, shipped, tiny_root, script, key):
    marker = tmp_path / "marker"
    path = hostile(tmp_path, shipped, "evil.ckpt", hparams={"note": Payload(os.system, f"touch {marker}")})
    extra = {"detect.py": [f"input={tiny_root / 'test'}", f"output={tmp_path / 'out'}"],
             "export.py": [f"output={tmp_path / 'model.onnx'}"],
             "evaluate.py": [f"paths.data_dir={tiny_root}"],
             "train.py": ["model=resnet", f"paths.data_dir={tiny_root}", f"hydra.run.dir={tmp_path / 'run'}", "logger=none"],
             "serve.py": ["port=0", f"hydra.run.dir={tmp_path / 'run'}"]}[script]
    proc = run_script(script, f"{key}={path}", *extra, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().splitlines()[-1] == (f"error: {path}: refused: its pickle calls posix.system, which a keypoints "
                                                   "checkpoint never holds (it could run code; only weights are read)")
    assert "Traceback" not in proc.stderr
    assert not marker.exists()
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("target", ["os.system", "keypoints.training.data.dataset.Path"])
def test_an_exported_model_whose_metadata_names_anything_but_our_classes_is_refused(tmp_path, target):
    """An .onnx file's metadata carries its data pipeline (instantiated by the Detector): checked the same way."""
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(DEFAULT_INT8_MODEL))
    marker = tmp_path / "marker"
    for prop in model.metadata_props:
        if prop.key == "data_config":
            config = json.loads(prop.value)
            config["eval_frame"] = {"_target_": target, "_args_": [f"touch {marker}"]}
            prop.value = json.dumps(config)
    onnx.save(model, str(tmp_path / "evil.onnx"))
    with pytest.raises(KeypointsError, match=rf"evil.onnx: refused: its config names _target_='{target}'"):
        Detector.from_checkpoint(tmp_path / "evil.onnx", backend="onnxruntime")
    assert not marker.exists()


def test_an_exported_model_that_never_finishes_is_stopped_at_load(tmp_path, monkeypatch):
    """A graph can loop for 2**62 turns inside one ONNX Runtime call, deaf to Ctrl-C: the load check has a time limit."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    model = onnx.load(str(DEFAULT_ONNX_MODEL))
    graph = model.graph
    result = graph.output[0].name
    for node in graph.node:  # the network's last node now feeds a Loop that hands its keypoints on, unchanged, each turn
        node.output[:] = [f"{name}_pre" if name == result else name for name in node.output]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "forever", [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
                    helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    graph.initializer.extend([helper.make_tensor("turns", TensorProto.INT64, [], [2**62]), helper.make_tensor("go", TensorProto.BOOL, [], [True])])
    graph.node.append(helper.make_node("Loop", ["turns", "go", f"{result}_pre"], [result], body=body))
    onnx.save(model, str(tmp_path / "forever.onnx"))
    monkeypatch.setattr("keypoints.inference.onnx_runtime.CHECK_SECONDS", 2.0)
    with pytest.raises(KeypointsError, match=r"forever.onnx: does not finish a batch of two blank \(\d, \d+, \d+\) inputs in 2 s"):
        Detector.from_checkpoint(tmp_path / "forever.onnx", backend="onnxruntime")
