"""A bounded load test of the web demo: `requests` uploads of one photo to POST /api/detect,
`concurrency` at a time, on loopback only. Reports latency percentiles, throughput and the server's
memory, checks that every answer equals the first, and that the server still answers afterwards.

With `slow=N`, the same run is made three times on the same server: alone, with N slow clients
started alongside (idle connections, headers sent a byte at a time, uploads that stall after their
headers; each one connection, dropped by the server's deadlines), and alone again; the p95 with them
is compared with the mean of the two without."""

import logging
import os
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import psutil

from keypoints.core import tables
from keypoints.core.errors import KeypointsError
from keypoints.web.launch import is_loopback, running


def load_test(cfg, serve_script: Path, out_dir: Path) -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request
    photo = Path(cfg.photo)
    if not photo.is_file():
        raise KeypointsError(f"{photo}: photo not found (photo=an image file)")
    if cfg.url is None:
        overrides = ["log_level=warning", f"hydra.run.dir={out_dir / 'serve'}", *cfg.serve]
        with running(serve_script, overrides, out_dir / "serve.log") as (process, url):
            print(f"server: {url} (scripts/serve.py {' '.join(cfg.serve) or 'with its defaults'}; log {out_dir / 'serve.log'})")
            report(cfg, url, photo, psutil.Process(process.pid))
    else:
        report(cfg, loopback(cfg.url), photo, None)


def loopback(url: str) -> str:
    """`url` without its trailing slash, if it is on this machine: a load test never leaves it."""
    if not is_loopback(httpx.URL(url).host):
        raise KeypointsError(f"url={url}: a load test only targets this machine (127.0.0.1, localhost or [::1])")
    return url.rstrip("/")


def report(cfg, url: str, photo: Path, server: psutil.Process | None) -> None:
    slow = cfg.get("slow", 0)
    alone = measure(cfg, url, photo, server, 0)
    if slow:  # the run without them both before and after: a machine whose load drifts moves both alike
        mixed, again = measure(cfg, url, photo, server, slow), measure(cfg, url, photo, server, 0)
        print(f"\np95 with {slow} slow clients: {mixed / ((alone + again) / 2):.2f} x the mean p95 of the runs "
              f"without them before and after ({alone:.0f} and {again:.0f} ms)")


SLOW_KINDS = ("idle", "dribbled headers", "stalled upload")


def slow_client(url: str, kind: str, cap: float) -> str:
    """One slow client of `kind` on its own connection; what it got: the status line's code, or "closed"."""
    target = httpx.URL(url)
    head = f"POST /api/detect HTTP/1.1\r\nHost: {target.host}\r\nContent-Type: multipart/form-data; boundary=xx\r\n"
    try:
        with socket.create_connection((target.host, target.port), timeout=cap) as sock:
            if kind == "dribbled headers":
                for byte in head.encode():
                    sock.sendall(bytes([byte]))
                    time.sleep(0.5)
            elif kind == "stalled upload":
                sock.sendall(head.encode() + b"Content-Length: 1000000\r\n\r\n--xx\r\n")
            got = sock.recv(64)
    except OSError:  # reset or timed out while sending: the server dropped it
        return "closed"
    return got.split(b" ")[1].decode() if got.startswith(b"HTTP/1.1 ") else "closed"


def measure(cfg, url: str, photo: Path, server: psutil.Process | None, slow: int) -> float:
    """One measured run (with `slow` slow clients alongside); prints its row and returns its p95 in ms."""
    data = photo.read_bytes()
    with httpx.Client(timeout=cfg.timeout_s, limits=httpx.Limits(max_connections=cfg.concurrency)) as client:
        def post():
            start = time.perf_counter()
            try:
                answer = client.post(f"{url}/api/detect", files={"file": (photo.name, data)})
            except httpx.HTTPError as e:
                return time.perf_counter() - start, type(e).__name__, None
            return time.perf_counter() - start, answer.status_code, answer.json() if answer.status_code == 200 else None

        _, status, first = post()  # warm-up, and the answer every later one must equal
        if first is None:
            raise KeypointsError(f"{url}/api/detect: the warm-up request got {status}, not 200")
        memory = PeakMemory(server)
        slow_pool = ThreadPoolExecutor(max(slow, 1))
        slow_ends = [slow_pool.submit(slow_client, url, SLOW_KINDS[i % 3], 2 * cfg.timeout_s) for i in range(slow)]
        start = time.perf_counter()
        with ThreadPoolExecutor(cfg.concurrency) as pool:
            results = list(pool.map(lambda _: post(), range(cfg.requests)))
        wall = time.perf_counter() - start
        memory.stop()
        slow_pool.shutdown()  # each ends by the server's deadlines, or its own cap of 2 x timeout_s
        _, after, answer = post()
    latency = np.array([seconds for seconds, _, _ in results]) * 1000
    statuses = Counter(status for _, status, _ in results)
    same = sum(body == first for _, _, body in results)
    alive = after == 200 and answer == first
    print(tables.markdown(
        ["requests", "at a time", "200 and same JSON", "other answers", "p50 ms", "p95 ms", "max ms", "requests/s",
         "server RSS before, MB", "server RSS peak, MB", "slow clients (how each ended)", "answers afterwards"],
        [[cfg.requests, cfg.concurrency, same, ", ".join(f"{k}: {v}" for k, v in statuses.items() if k != 200) or "none",
          f"{np.percentile(latency, 50):.0f}", f"{np.percentile(latency, 95):.0f}", f"{latency.max():.0f}",
          f"{cfg.requests / wall:.1f}", _mb(memory.before), _mb(memory.peak), _ends(slow_ends), "yes" if alive else f"no ({after})"]]))
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"\nCPU: {tables.cpu_name()}, {os.cpu_count()} cores (load average before the run: {load}); "
          f"photo: {photo.name} ({len(first['faces'])} faces, {len(data) / 1024:.0f} KB); client and server on loopback.")
    if same < cfg.requests or not alive:
        raise KeypointsError(f"{cfg.requests - same} of {cfg.requests} requests did not get the warm-up's answer"
                             + ("" if alive else "; the server did not answer afterwards"))
    return float(np.percentile(latency, 95))


def _ends(futures: list) -> str:
    if not futures:
        return "none"
    return f"{len(futures)}: " + ", ".join(f"{k} {v}" for k, v in sorted(Counter(f.result() for f in futures).items()))


def _mb(size: int | None) -> str:
    return "n/a (not started here)" if size is None else f"{size / 2**20:.0f}"


class PeakMemory:
    """The resident memory of a process (and its children) sampled every 10 ms in a thread."""

    def __init__(self, process: psutil.Process | None):
        self.process, self.before, self.peak = process, None, None
        if process is not None:
            self.before = self.peak = self._rss()
            self._done = threading.Event()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()

    def _rss(self) -> int:
        return sum(p.memory_info().rss for p in [self.process, *self.process.children(recursive=True)])

    def _sample(self) -> None:
        while not self._done.wait(0.01):
            try:
                self.peak = max(self.peak, self._rss())
            except psutil.Error:  # the server has gone: "answers afterwards" will say so
                return

    def stop(self) -> None:
        if self.process is not None:
            self._done.set()
            self._thread.join()
            self.peak = max(self.peak, self._rss())

