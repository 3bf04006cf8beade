"""Each detector setting is declared once (keypoints.inference.config): a setting added there reaches
keypoints.Detector, the commands' composed configs (detect, filter, serve, benchmark, export) and
load_detector, the one way the CLIs, the server and the Ray engine's actors build their Detector."""

from dataclasses import fields, make_dataclass

import pytest
from hydra import compose
from hydra.core.config_store import ConfigStore

import keypoints
from keypoints.commands import command_help
from keypoints.core.errors import KeypointsError
from keypoints.detect import load_detector
from keypoints.inference import config

from conftest import initialize_for

COMMANDS = ("detect", "filter", "serve", "benchmark", "export")


@pytest.fixture
def probe_setting(monkeypatch):
    """DetectorConfig with one more setting, `probe` (default 3, checked), registered as a new one would be."""
    base = config.DetectorConfig

    def check(self):
        base.__post_init__(self)
        config.check_value("detector.probe", self.probe, config.whole(0))
    probed = make_dataclass("DetectorConfig", [("probe", int, config.setting(3, "a setting added by a test"))],
                            bases=(base,), namespace={"__post_init__": check})
    monkeypatch.setattr(config, "DetectorConfig", probed)
    monkeypatch.setattr(config, "DETECTOR_KEYS", (*config.DETECTOR_KEYS, "probe"))
    for name, stage in config.STAGES.items():
        ConfigStore.instance().store(group="detector", name=name, node=probed(faces=stage()))
    yield
    for name, stage in config.STAGES.items():
        ConfigStore.instance().store(group="detector", name=name, node=base(faces=stage()))


def _compose(name: str, *overrides: str):
    with initialize_for(name):
        return compose(name, overrides=list(overrides))


def test_a_new_setting_reaches_the_detector_every_command_and_load_detector(probe_setting):
    assert keypoints.Detector().settings["probe"] == 3
    assert keypoints.Detector(probe=7).settings["probe"] == 7
    with pytest.raises(KeypointsError, match="detector.probe=-1"):
        keypoints.Detector(probe=-1)
    for name in COMMANDS:
        cfg = _compose(name, "detector.probe=5")
        assert cfg.detector.probe == 5, name
        assert config.settings_of(cfg)["probe"] == 5, name
    assert load_detector(_compose("serve", "detector.probe=6")).settings["probe"] == 6
    assert "detector.probe" in command_help("detect") and "a setting added by a test" in command_help("detect")


def test_every_setting_given_on_the_command_line_reaches_the_detector():
    given = {"detector.refine": 2, "detector.refine_min_move": 0.25, "detector.flip": True, "backend": "onnxruntime",
             "max_megapixels": 5, "ort_threads": 1, "workers": 1, "device": "cpu"}
    assert {k.removeprefix("detector.") for k in given} == set(config.DETECTOR_KEYS + config.RUNTIME_KEYS)
    detector = load_detector(_compose("detect", *(f"{k}={v}" for k, v in given.items())))
    assert detector.settings == {k.removeprefix("detector."): v for k, v in given.items()}
    assert detector.max_pixels == 5_000_000 and detector.refine == 2 and detector.workers == 1


def test_every_setting_has_a_meaning_in_the_help_and_a_wrong_key_is_one_line():
    text = command_help("detect")
    for f in fields(config.DetectorConfig) + fields(config.RuntimeConfig):
        assert f.metadata["meaning"] in text, f.name
    with pytest.raises(KeypointsError, match="refin: not a detector setting"):
        keypoints.Detector(refin=2)


def test_outputs_of_an_older_output_format_are_made_again(monkeypatch):
    """What made an output includes what a face's output holds: a release that adds keypoints_3d (or changes
    the pose) bumps OUTPUT_FORMAT, and resume no longer takes the older outputs as done."""
    cfg = _compose("detect", "input=x.jpg", "output=out")
    before = config.provenance(cfg, None)
    monkeypatch.setattr(config, "OUTPUT_FORMAT", config.OUTPUT_FORMAT + 1)
    assert config.provenance(cfg, None) != before
