"""The web demo and its REST API: FastAPI on uvicorn, the Detector loaded once per inference slot.

    POST /api/detect    multipart field `file` -> the JSON scripts/detect.py writes for that photo
    POST /api/filter    the same upload, `?overlay=sunglasses|moustache|hat|keypoints` -> the picture as PNG
    POST /api/annotate  the page's call: {"record": <detect.py's JSON>, "image": <the picture, a JPEG data URL>}
    GET  /api/info      the overlays on offer, the limits, which model file runs and why;  GET / the page (static/index.html)

An upload is read from the request stream into memory (never a temporary file) and refused by its
size before anything is decoded. Photos go through the model `max_concurrency` at a time, in worker
threads so the event loop keeps answering; past `max_queue` waiting requests the answer is 503.
Every refusal is one line: {"detail": "..."}, and what it echoes of the request is cut short.

Slow and idle clients are shed: a request's headers must arrive within `header_timeout_s`
(keypoints.web.deadlines), its upload within `body_timeout_s` (408), an idle keep-alive connection
is closed after `keep_alive_s`, and past `max_connections` open connections the answer is 503. A
server bound to loopback serves only loopback Host: names (`allowed_hosts`), so a web page whose
name was rebound to 127.0.0.1 (DNS rebinding) cannot call it.
"""

import asyncio
import base64
import json
import logging
import socket
from dataclasses import dataclass
from importlib import resources
from pathlib import PurePosixPath

import cv2
import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, Response
from omegaconf import OmegaConf
from python_multipart import FormParser
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import parse_options_header
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import ClientDisconnect

from keypoints.core import drawing
from keypoints.inference import filters, runner
from keypoints.detect import load_detector
from keypoints.inference.backends import explain
from keypoints.inference.detector import cores
from keypoints.core.errors import KeypointsError
from keypoints.core.io import TooManyPixels, image_from_bytes, opencv_quiet
from keypoints.web.deadlines import with_header_deadline
from keypoints.web.launch import is_loopback

FORM_SLACK = 64 * 1024  # room for the multipart headers and boundaries around a file of the full limit
PLAIN = "keypoints"  # the picture scripts/detect.py draws (boxes, scores, keypoints, pose axes): the first "filter"
ECHO = 80  # characters of a client's value (a name, a query parameter) that an answer repeats
LOOPBACK_NAMES = ["localhost", "127.0.0.1", "[::1]"]
log = logging.getLogger("keypoints.web")


def cut(value, limit: int = ECHO) -> str:
    """A client's value as an answer repeats it: at most `limit` characters."""
    text = str(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


@dataclass
class Upload:
    name: str  # the file's name as the client sent it, without folders
    data: bytes


def create_app(cfg) -> FastAPI:
    """The app for a composed conf/serve.yaml; the detectors are loaded (and the config checked) here."""
    limit = int(cfg.max_upload_mb * 2**20)
    overlays, placements = _overlays(cfg), {k: dict(v) for k, v in cfg.placements.items()}
    # A Detector is not thread-safe (the face stage keeps its input size), so each slot has its own:
    # this queue of idle detectors is the semaphore that bounds inference to max_concurrency.
    idle: asyncio.Queue = asyncio.Queue()
    # each slot its share of the cores (workers=, unless set): with ort_threads=null a detector runs its
    # network on `workers` threads, and max_concurrency slots at work at once would oversubscribe the CPU
    share = OmegaConf.merge(cfg, {"workers": cfg.get("workers") or max(1, cores() // cfg.max_concurrency)})
    detectors = [load_detector(share, cfg.ckpt_path) for _ in range(cfg.max_concurrency)]
    for detector in detectors:
        idle.put_nowait(detector)
    max_pixels = detectors[0].max_pixels  # max_megapixels=, as the detectors read it
    model = explain(cfg.backend, cfg.device, cfg.ckpt_path)  # which file runs the network, and why (auto: measured)
    page = (resources.files("keypoints.web") / "static" / "index.html").read_text()
    # /docs and /redoc load their scripts and fonts from a CDN: off (the server needs no internet);
    # /openapi.json still describes the API
    app = FastAPI(title="keypoints", summary="68 facial landmarks for every face in a photo", docs_url=None, redoc_url=None)
    busy = 0  # requests holding or waiting for a detector

    def work(detector, upload: Upload, overlay: str | None, ext: str):
        """In a worker thread: decode, detect, record, and draw the picture when `overlay` is given."""
        try:
            image = image_from_bytes(upload.data, upload.name, max_pixels)
        except TooManyPixels as e:
            raise HTTPException(413, str(e)) from None
        except KeypointsError as e:
            raise HTTPException(415, str(e)) from None
        faces = detector(image)
        record = runner.record(faces, image, image=upload.name)
        if overlay is None:
            return record, None
        if overlay == PLAIN:
            picture = drawing.draw_faces(image, faces, pose=cfg.draw_pose)
        else:
            picture = filters.apply(image, faces, *overlays[overlay], placements)
        return record, encode(picture, ext, upload.name)

    async def infer(request: Request, overlay: str | None = None, ext: str = ".png"):
        nonlocal busy
        upload = await read_upload(request, limit, cfg.body_timeout_s)  # read first: a client hears a refusal best once it has sent
        if overlay is not None and overlay not in (PLAIN, *overlays):
            raise HTTPException(422, f"overlay={cut(overlay)}: unknown; choose one of {', '.join((PLAIN, *overlays))}")
        if busy >= cfg.max_concurrency + cfg.max_queue:
            raise HTTPException(503, f"busy: {busy} photos in progress or waiting; try again in a moment")
        busy += 1
        try:
            detector = await idle.get()
            try:  # a cancelled request still waits for its thread, so the detector is never shared
                return await run_in_threadpool(work, detector, upload, overlay, ext)
            finally:
                idle.put_nowait(detector)
        finally:
            busy -= 1

    @app.exception_handler(Exception)
    async def one_line(request: Request, error: Exception):  # the traceback goes to the server's log
        first = (str(error).strip().splitlines() or [""])[0][:200]
        return JSONResponse({"detail": f"internal error: {type(error).__name__}: {first}"}, status_code=500)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index():
        return page

    @app.get("/api/info")
    async def info():
        return {"overlays": [PLAIN, *overlays], "max_upload_mb": cfg.max_upload_mb,
                "max_megapixels": cfg.max_megapixels, "model": model}

    @app.post("/api/detect", openapi_extra=UPLOAD_DOC)
    async def detect(request: Request):
        record, _ = await infer(request)
        return Response(json.dumps(record), media_type="application/json")  # as detect.py writes it

    @app.post("/api/filter", openapi_extra=UPLOAD_DOC, response_class=Response)
    async def filter_(request: Request, overlay: str = "sunglasses"):
        _, png = await infer(request, overlay, ".png")
        return Response(png, media_type="image/png")

    @app.post("/api/annotate", openapi_extra=UPLOAD_DOC)
    async def annotate(request: Request, overlay: str = PLAIN):
        record, picture = await infer(request, overlay, ".jpg")
        kind = "png" if picture.startswith(PNG_SIGNATURE) else "jpeg"  # a photo JPEG cannot hold comes back as PNG
        image = f"data:image/{kind};base64," + base64.b64encode(picture).decode()
        return Response(json.dumps({"record": record, "image": image}), media_type="application/json")

    @app.middleware("http")
    async def nosniff(request: Request, call_next):  # a browser takes each answer as the type it says
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    app.add_middleware(TrustedHostMiddleware, allowed_hosts=trusted_hosts(cfg))
    return app


PNG_SIGNATURE = b"\x89PNG"


def encode(picture, ext: str, name: str) -> bytes:
    """The picture as `ext`; as PNG where that format cannot hold it (a JPEG is at most 65535 px a side)."""
    for attempt in dict.fromkeys((ext, ".png")):
        try:
            with opencv_quiet():
                ok, encoded = cv2.imencode(attempt, picture)
        except cv2.error:
            ok = False
        if ok:
            return encoded.tobytes()
    raise KeypointsError(f"{name}: the picture could not be encoded as {ext} or .png")


def trusted_hosts(cfg) -> list[str]:
    """The Host: names served: `allowed_hosts`, or (null) the loopback names when bound to a loopback
    address, and any name otherwise (a server on 0.0.0.0 is reached by names this cannot know)."""
    if cfg.get("allowed_hosts") is not None:
        return list(cfg.allowed_hosts)
    if not is_loopback(cfg.host):
        return ["*"]
    return list(dict.fromkeys([*LOOPBACK_NAMES, f"[{cfg.host}]" if ":" in cfg.host else cfg.host]))


UPLOAD_DOC = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"], "properties": {"file": {"type": "string", "format": "binary"}}}}}}}


async def read_upload(request: Request, limit: int, timeout: float | None = None) -> Upload:
    """The multipart field `file`, kept in memory as it streams in: refused by its declared
    Content-Length, and again by the bytes that arrive, before any of it is decoded; an upload that
    has not all arrived within `timeout` seconds is answered 408, one that the client abandons is
    one log line."""
    try:
        return await asyncio.wait_for(_read_upload(request, limit), timeout)
    except asyncio.TimeoutError:
        log.warning(f"{_client(request)}: upload not received within body_timeout_s={timeout:g}; answered 408")
        raise HTTPException(408, f"upload not received within {timeout:g} s (body_timeout_s=); send it again") from None
    except ClientDisconnect:
        log.warning(f"{_client(request)}: disconnected during its upload")
        raise HTTPException(400, "client disconnected during the upload") from None  # nobody is there to read it


def _client(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else "a client"


async def _read_upload(request: Request, limit: int) -> Upload:
    too_large = HTTPException(413, f"upload above the limit of {limit / 2**20:g} MB (max_upload_mb=)")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_SLACK:
        raise too_large
    ctype, params = parse_options_header(request.headers.get("content-type"))
    if ctype != b"multipart/form-data" or b"boundary" not in params:
        raise HTTPException(415, "send the photo as multipart/form-data in the field 'file' (curl -F file=@photo.jpg ...)")
    files = []
    # MAX_MEMORY_FILE_SIZE: python-multipart would otherwise spill a file above 1 MB to a temporary file
    received = 0
    try:  # the parser itself refuses some boundaries (above 256 bytes) as it is made
        parser = FormParser("multipart/form-data", None, files.append, boundary=params[b"boundary"],
                            config={"MAX_MEMORY_FILE_SIZE": float("inf")})
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit + FORM_SLACK:
                raise too_large
            parser.write(chunk)
        parser.finalize()
    except FormParserError as e:
        raise HTTPException(400, f"malformed multipart upload ({str(e).splitlines()[0][:120]})") from None
    uploads = [f for f in files if f.field_name == b"file"]
    if not uploads:
        raise HTTPException(400, "no file: send the photo in the multipart field 'file'")
    if len(uploads) > 1:  # never a silent choice of one
        raise HTTPException(400, f"{len(uploads)} files in the field 'file': send one photo a request")
    upload = uploads[0]
    name = cut(PurePosixPath((upload.file_name or b"").decode("utf-8", "replace").replace("\\", "/")).name or "upload")
    data = upload.file_object.getvalue()
    if not data:
        raise HTTPException(400, f"{name}: empty upload")
    if len(data) > limit:
        raise too_large
    return Upload(name, data)


def _overlays(cfg) -> dict:
    """name -> (BGRA overlay, kind) for every overlay whose file is there (sunglasses always is)."""
    found = {}
    for name in cfg.overlay_files:
        try:
            found[name] = filters.load_overlay(name, cfg.overlay_dir, None, dict(cfg.overlay_files))
        except KeypointsError as e:
            print(f"note: {e}; not offered", flush=True)
    return found


def serve(cfg) -> None:
    """Loads the detectors, listens on cfg.host:cfg.port (0: any free port), prints the address, serves until Ctrl-C."""
    app = create_app(cfg)
    family = socket.AF_INET6 if ":" in cfg.host else socket.AF_INET
    try:  # bound here, so a busy port is one line rather than uvicorn's log and exit
        sock = socket.create_server((cfg.host, cfg.port), family=family)
    except OSError as e:
        reason = (e.strerror or str(e)).split(" (while attempting")[0]  # Python's addition repeats the address
        raise KeypointsError(f"{cfg.host}:{cfg.port}: cannot listen there ({reason}); choose another port= or host=") from None
    host, port = sock.getsockname()[:2]
    print(f"keypoints demo on http://{f'[{host}]' if family == socket.AF_INET6 else host}:{port}/ (Ctrl-C stops it)", flush=True)
    config = uvicorn.Config(app, log_level=cfg.log_level, timeout_graceful_shutdown=5, http=with_header_deadline(cfg.header_timeout_s),
                            timeout_keep_alive=cfg.keep_alive_s, limit_concurrency=cfg.max_connections)
    uvicorn.Server(config).run(sockets=[sock])
