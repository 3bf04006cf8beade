"""scripts/benchmark_faces.py's settings part: YuNet's settings against one another on real photos."""

import re
import shutil

import pytest

from conftest import PHOTOS, run_script
from keypoints.benchmarks.faces import set_photos, settings_table
from keypoints.core.errors import KeypointsError
from keypoints.inference.faces import load_faces
from keypoints.core.io import read_image


@pytest.fixture
def photo_set(tmp_path):
    """The shared photos laid out as LFW is: one in the folder, two in a subfolder, and a file that is not a photo."""
    (tmp_path / "set" / "person").mkdir(parents=True)
    shutil.copy(PHOTOS / "the_beatles.jpg", tmp_path / "set")
    for name in ("obamas.jpg", "mona_lisa.jpg"):
        shutil.copy(PHOTOS / name, tmp_path / "set" / "person" / name)
    (tmp_path / "set" / "notes.txt").write_text("not a photo")
    return tmp_path / "set"


def test_settings_count_the_faces_each_loses_and_finds_against_the_first(photo_set):
    photos = set_photos(photo_set)
    assert [p.name for p in photos] == ["mona_lisa.jpg", "obamas.jpg", "the_beatles.jpg"]
    strict = sum(len(load_faces("yunet", min_score=0.935)(read_image(p))) for p in photos)
    assert 0 < strict < 7  # some faces of the shared photos score under 0.935 (0.92-0.95)
    rows = settings_table({"mine": {"folder": str(photo_set)}}, [{"scale": 1.0}, {"min_score": 0.935}, {}]).splitlines()
    assert re.match(r"\| scale=1\.0 \| 7 \(0 / 0\), \d+\.\d\d \|$", rows[2])
    assert rows[3].startswith(f"| min_score=0.935 | {strict} ({7 - strict} / 0), ")  # faces under it are lost, none new
    assert rows[4].startswith("| the default | 7 (0 / 0), ")


def test_every_step_th_photo_at_most_limit(photo_set):
    assert [p.name for p in set_photos(photo_set, step=2)] == ["mona_lisa.jpg", "the_beatles.jpg"]
    assert [p.name for p in set_photos(photo_set, step=1, limit=1)] == ["mona_lisa.jpg"]


def test_a_bad_setting_or_an_empty_folder_is_one_line(photo_set, tmp_path):
    with pytest.raises(KeypointsError, match=re.escape("detector.faces.scal: Key 'scal' not in 'YuNetFaces'")):
        settings_table({"mine": {"folder": str(photo_set)}}, [{"scal": 1.0}])
    (tmp_path / "empty").mkdir()
    proc = run_script("benchmark_faces.py", "parts=[settings]", "~sets", f"+sets={{none: {{folder: {tmp_path / 'empty'}}}}}",
                      f"hydra.run.dir={tmp_path / 'run'}", check=False)
    assert proc.returncode == 2 and proc.stderr.strip() == f"error: {tmp_path / 'empty'}: no photos (sets.<name>.folder=a folder of images)"
