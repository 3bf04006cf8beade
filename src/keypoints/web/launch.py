"""scripts/serve.py (or `keypoints serve`) in a child process, as the tests and the load test use it:
started on a free loopback port, waited for until it answers, and stopped."""

import ipaddress
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from keypoints.core.errors import KeypointsError


def is_loopback(host: str) -> bool:
    """Whether `host` (an address or a name, IPv6 with or without brackets) is this machine's loopback."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


@contextmanager
def running(script: Path | list[str], overrides: list[str], log: Path, env: dict | None = None,
            timeout: float = 180.0, cwd: Path | None = None):
    """Yields (process, base URL) once the server answers GET /api/info; its output goes to `log`
    (a pipe nobody reads would fill and stall it). Stopped with SIGTERM (then SIGKILL) afterwards.
    `script`: scripts/serve.py, run from its checkout, or a command line (e.g. [".../bin/keypoints", "serve"])."""
    command = script if isinstance(script, list) else [sys.executable, str(script)]
    with open(log, "w") as out:
        process = subprocess.Popen([*command, "host=127.0.0.1", "port=0", *overrides], stdout=out, stderr=subprocess.STDOUT,
                                   env=env, cwd=cwd or (None if isinstance(script, list) else Path(script).parent.parent))
    try:
        yield process, _wait_for(process, log, timeout)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for(process: subprocess.Popen, log: Path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise KeypointsError(f"the server exited with {process.returncode}: {log.read_text()[-400:].strip()}")
        found = re.search(r"http://\S+?:\d+/", log.read_text())
        if found:
            try:
                if httpx.get(found.group(0) + "api/info", timeout=5).status_code == 200:
                    return found.group(0).rstrip("/")
            except httpx.TransportError:
                pass  # listening, but uvicorn is still starting
        time.sleep(0.2)
    raise KeypointsError(f"the server did not answer within {timeout:g} s (its log: {log})")
