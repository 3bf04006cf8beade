"""Side-by-side results of a sweep's jobs, read from their run folders (no W&B account needed)."""

import json
from pathlib import Path

import yaml
from matplotlib.figure import Figure  # no pyplot: no backend to choose, no global figure state

from keypoints.errors import KeypointsError
from keypoints import tables
from keypoints import outputs

COLUMNS = ("best_val_nme", "test_nme", "test_fr10", "test_rmse_px", "epochs", "fit_seconds")


def collect(sweep_dir: Path, bad: list | None = None) -> list[dict]:
    """One row per job folder that has .hydra/overrides.yaml; jobs still running show no metrics,
    and so do jobs whose metrics.json cannot be read: their files are appended to `bad`."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise KeypointsError(f"{sweep_dir}: sweep folder not found (e.g. outputs/multirun/<date_time>)")
    rows = []
    for job in sorted(sweep_dir.iterdir(), key=lambda p: (len(p.name), p.name)):
        overrides_file = job / ".hydra" / "overrides.yaml"
        if not overrides_file.is_file():
            continue
        overrides = dict(o.split("=", 1) for o in yaml.safe_load(overrides_file.read_text()) or [] if "=" in o)
        metrics_file = job / "metrics.json"
        metrics = {}
        if metrics_file.is_file():
            try:
                metrics = json.loads(metrics_file.read_text())
                if not isinstance(metrics, dict):
                    raise ValueError("not a JSON object")
            except (ValueError, UnicodeDecodeError) as e:
                metrics = {}
                if bad is not None:
                    bad.append(f"{metrics_file}: not a metrics file ({str(e).splitlines()[0][:80]})")
        test = metrics.get("test", {})
        rows.append({"job": job.name, "overrides": overrides, "best_val_nme": metrics.get("best_val_nme"),
                     "test_nme": test.get("nme"), "test_fr10": test.get("fr10"), "test_rmse_px": test.get("rmse_px"),
                     "epochs": metrics.get("epochs"), "fit_seconds": metrics.get("fit_seconds")})
    if not rows:
        raise KeypointsError(f"{sweep_dir}: no job folders with .hydra/overrides.yaml in it")
    return rows


def swept_keys(rows: list[dict]) -> list[str]:
    """The overrides whose values differ between jobs (what the sweep varied)."""
    keys = sorted({k for r in rows for k in r["overrides"]})
    return [k for k in keys if len({r["overrides"].get(k) for r in rows}) > 1] or keys


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(rows: list[dict]) -> str:
    keys = swept_keys(rows)
    return tables.markdown(["job", *keys, *COLUMNS], [
        [_fmt(c) for c in (r["job"], *(r["overrides"].get(k, "") for k in keys), *(r[c] for c in COLUMNS))] for r in rows])


def plot(rows: list[dict], path: Path, metric: str = "best_val_nme") -> None:
    """The metric (and test NME) against the first swept value, one point per job."""
    key = swept_keys(rows)[0]
    done = [r for r in rows if r[metric] is not None]
    labels = [str(r["overrides"].get(key, "")) for r in done]
    fig = Figure(figsize=(6, 4))
    ax = fig.subplots()
    for m, marker in ((metric, "o-"), ("test_nme", "s--")):
        ax.plot(labels, [100 * (r[m] or float("nan")) for r in done], marker, label=m.replace("_", " "))
    ax.set_xlabel(key)
    ax.set_ylabel("NME (%)")
    ax.set_title(f"{Path(path).parent.name}: {metric} by {key}")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    with outputs.atomic_path(path) as temp:
        fig.savefig(temp, dpi=120)
