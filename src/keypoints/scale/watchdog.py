"""Ray's local cluster goes with the run that started it, however the run ends.

`ray.init()` starts the cluster's processes as the driver's children (GCS, raylet, monitors, and the
raylet's DashboardAgent and RuntimeEnvAgent). A driver that exits shuts them down; one that is SIGKILLed
cannot, and the two agents then linger for about a minute (~185 MB) before noticing. This process, started
beside a local cluster (keypoints.scale.engine.start_ray), watches the driver and ends what it started:

    python -m keypoints.scale.watchdog <driver pid>
"""

import os
import sys
import time

import psutil

POLL_SECONDS = 0.5


def watch(driver: int) -> None:
    """Remember the driver's descendants while it runs; once it is gone, kill those still running (psutil
    checks each one's start time first, so a number the OS gave to a new process is left alone)."""
    try:
        parent = psutil.Process(driver)
    except psutil.NoSuchProcess:
        return
    known: dict[int, psutil.Process] = {}
    while True:
        try:
            if parent.status() == psutil.STATUS_ZOMBIE:
                break
            for child in parent.children(recursive=True):
                known.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            break
        time.sleep(POLL_SECONDS)
    for process in known.values():
        if process.pid != os.getpid():
            try:
                process.kill()
            except psutil.Error:  # gone already, or no longer the process we saw
                pass


if __name__ == "__main__":
    watch(int(sys.argv[1]))
