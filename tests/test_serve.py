"""The web demo as its users meet it: scripts/serve.py running as a real server on loopback, its REST
API called over HTTP, and its page driven by a real headless Chromium (Debian's chromium package).

KEYPOINTS_SCREENSHOT=docs/demo.png saves the page with its result as the README shows it."""

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor

import cv2
import httpx
import numpy as np
import pytest

from conftest import OVERLAYS, PHOTOS, REPO, run_script
from keypoints import Detector
from keypoints.inference import runner
from keypoints.core.io import read_image
from keypoints.web.launch import running

OBAMAS = PHOTOS / "obamas.jpg"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Without these a headless Chromium on a closed network waits on updates, sign-in and QUIC probes.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One server for the module: small limits so each refusal is cheap to provoke."""
    run = tmp_path_factory.mktemp("serve")
    overrides = ["max_upload_mb=3", "max_megapixels=30", "max_concurrency=1", "max_queue=1", "log_level=warning",
                 f"hydra.run.dir={run}"]
    with running(REPO / "scripts" / "serve.py", overrides, run / "serve.log",
                 env={**os.environ, "KEYPOINTS_OVERLAYS": str(OVERLAYS)}) as (_, url):
        yield url


def post(url: str, route: str = "/api/detect", **kwargs) -> httpx.Response:
    return httpx.post(url + route, timeout=60, **kwargs)


def assert_answers(url: str) -> None:
    assert httpx.get(url + "/api/info", timeout=10).status_code == 200


def test_rest_json_is_detect_py_json(server, tmp_path):
    answer = post(server, files={"file": ("obamas.jpg", OBAMAS.read_bytes(), "image/jpeg")})
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    got = answer.json()
    run_script("detect.py", f"input={OBAMAS}", f"output={tmp_path}", f"hydra.run.dir={tmp_path / 'run'}")
    cli = json.loads((tmp_path / "obamas.json").read_text())
    assert got == {**cli, "image": "obamas.jpg"}  # the CLI names the path it was given, the API the upload
    assert len(got["faces"]) == 2
    image = read_image(OBAMAS)
    assert got == json.loads(json.dumps(runner.record(Detector()(image), image, image="obamas.jpg")))


def test_filters_come_back_as_png(server):
    photo = cv2.imread(str(OBAMAS))
    pictures = {}
    for overlay in ("sunglasses", "keypoints"):
        answer = post(server, f"/api/filter?overlay={overlay}", files={"file": ("obamas.jpg", OBAMAS.read_bytes())})
        assert answer.status_code == 200 and answer.headers["content-type"] == "image/png"
        pictures[overlay] = cv2.imdecode(np.frombuffer(answer.content, np.uint8), cv2.IMREAD_COLOR)
        assert pictures[overlay].shape == photo.shape
    assert np.abs(pictures["sunglasses"].astype(int) - photo).mean() > 1  # something was drawn
    assert not np.array_equal(pictures["sunglasses"], pictures["keypoints"])


def _streamed(size: int):
    """A multipart body sent in chunks without a Content-Length: only the bytes that arrive tell its size."""
    yield b'--b0undary\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n\r\n'
    for _ in range(size // 65536):
        yield bytes(65536)
    yield b"\r\n--b0undary--\r\n"


def _huge_png() -> bytes:
    return cv2.imencode(".png", np.zeros((6000, 6000), np.uint8))[1].tobytes()  # 36 MP in ~40 KB


BAD_UPLOADS = {
    "not an image": (dict(files={"file": ("notes.txt", b"just some text")}), 415, "notes.txt: not a readable image"),
    "empty file": (dict(files={"file": ("empty.jpg", b"")}), 400, "empty.jpg: empty upload"),
    "no file field": (dict(files={"photo": ("obamas.jpg", OBAMAS.read_bytes())}), 400, "no file: send the photo in the multipart field 'file'"),
    "not multipart": (dict(content=OBAMAS.read_bytes(), headers={"content-type": "image/jpeg"}), 415, "multipart/form-data"),
    "too large by Content-Length": (dict(files={"file": ("big.jpg", bytes(4 * 2**20))}), 413, "above the limit of 3 MB"),
    "too large as it streams": (dict(content=_streamed(4 * 2**20), headers={"content-type": "multipart/form-data; boundary=b0undary"}),
                                413, "above the limit of 3 MB"),
    "too many pixels": (dict(files={"file": ("huge.png", _huge_png())}), 413, "huge.png: 36 megapixels, above the limit of 30"),
}


@pytest.mark.parametrize("case", BAD_UPLOADS)
def test_a_bad_upload_is_a_one_line_4xx_and_the_server_goes_on(server, case):
    kwargs, status, message = BAD_UPLOADS[case]
    answer = post(server, **kwargs)
    detail = answer.json()["detail"]
    assert answer.status_code == status and message in detail and "\n" not in detail, (answer.status_code, detail)
    assert_answers(server)


def test_an_unknown_overlay_is_named(server):
    answer = post(server, "/api/filter?overlay=cape", files={"file": ("obamas.jpg", OBAMAS.read_bytes())})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("overlay=cape: unknown; choose one of keypoints")


def test_past_the_queue_the_answer_is_503_and_the_rest_are_served(server):
    """max_concurrency=1, max_queue=1: of 8 photos sent at once, two are in the server at a time."""
    data = (PHOTOS / "the_beatles.jpg").read_bytes()
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: post(server, files={"file": ("the_beatles.jpg", data)}), range(8)))
    statuses = sorted(a.status_code for a in answers)
    assert set(statuses) == {200, 503}, statuses
    assert all(a.json()["detail"].startswith("busy: ") for a in answers if a.status_code == 503)
    assert post(server, files={"file": ("obamas.jpg", OBAMAS.read_bytes())}).status_code == 200


@pytest.fixture(scope="module")
def chromium():
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium not found: .ci/run installs Debian's chromium package; the browser test must run in CI")
        pytest.skip("chromium not found (apt-get install chromium): the browser test needs a real Chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield lambda *extra: playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *extra])


def test_the_page_in_chromium_finds_the_faces_of_an_uploaded_photo(server, chromium, tmp_path):
    browser = chromium()
    page = browser.new_page(viewport={"width": 1000, "height": 820}, accept_downloads=True)
    page.goto(server)
    page.wait_for_selector("body[data-ready]")
    page.set_input_files("#file", str(OBAMAS))
    status = page.wait_for_selector("#status[data-faces]", timeout=30000)
    assert status.get_attribute("data-faces") == "2" and status.inner_text() == "2 faces in obamas.jpg (759 × 500 px)"
    assert page.eval_on_selector("#result", "img => img.naturalWidth") == 759
    assert page.locator("#faces tbody tr").count() == 2
    if os.environ.get("KEYPOINTS_SCREENSHOT"):
        page.screenshot(path=os.environ["KEYPOINTS_SCREENSHOT"], full_page=True)
    with page.expect_download() as download:
        page.click("#download")
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert saved.name == "obamas.json"
    assert json.loads(saved.read_text()) == post(server, files={"file": ("obamas.jpg", OBAMAS.read_bytes())}).json()

    before = page.get_attribute("#result", "src")
    page.select_option("#overlay", "sunglasses")
    page.wait_for_function("src => document.getElementById('result').src !== src", arg=before)
    assert page.get_attribute("#status", "data-faces") == "2"

    page.set_input_files("#file", files=[{"name": "notes.txt", "mimeType": "text/plain", "buffer": b"no photo"}])
    page.wait_for_selector("#status.error")
    assert page.inner_text("#status") == "error: notes.txt: not a readable image (empty, corrupt or not an image format)"
    browser.close()


def test_the_webcam_button_takes_a_picture_from_a_fake_camera(server, chromium):
    browser = chromium("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
    page = browser.new_page()
    page.goto(server)
    page.wait_for_selector("body[data-ready]")
    page.click("#webcam-start")
    page.wait_for_function("document.getElementById('webcam').videoWidth > 0")
    page.click("#snap")
    status = page.wait_for_selector("#status[data-faces]", timeout=30000)
    assert "webcam.jpg" in status.inner_text()  # Chromium's test pattern has no face: what counts is the round trip
    browser.close()


def test_the_load_test_reports_latency_memory_and_that_the_server_still_answers(tmp_path):
    out = run_script("load_test.py", "requests=12", "concurrency=4", f"photo={OBAMAS}", f"hydra.run.dir={tmp_path}").stdout
    cells = [c.strip() for c in next(line for line in out.splitlines() if line.startswith("| 12 | 4 |")).strip("|").split("|")]
    assert cells[2] == "12" and cells[3] == "none" and cells[-1] == "yes", cells  # all answered alike, and after
    assert 0 < float(cells[4]) <= float(cells[5]) and 100 < int(cells[8]) <= int(cells[9]), cells  # p50 <= p95; RSS, MB
    assert "CPU: " in out
