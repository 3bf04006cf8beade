"""Side-by-side results of a sweep's jobs, read from their run folders (no W&B account needed)."""

import json
from pathlib import Path

import yaml
from matplotlib.figure import Figure  # no pyplot: no backend to choose, no global figure state

from keypoints.core.errors import KeypointsError
from keypoints.core import tables
from keypoints.core import outputs

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
        try:
            overrides = read_overrides(overrides_file)
        except ValueError as e:
            if bad is not None:
                bad.append(f"{overrides_file}: not a Hydra overrides file ({e})")
            continue
        metrics_file = job / "metrics.json"
        metrics, test = {}, {}
        if metrics_file.is_file():
            try:
                metrics, test = read_metrics(metrics_file)
            except ValueError as e:
                if bad is not None:
                    bad.append(f"{metrics_file}: not a metrics file ({e})")
        rows.append({"job": job.name, "overrides": overrides, "best_val_nme": metrics.get("best_val_nme"),
                     "test_nme": test.get("nme"), "test_fr10": test.get("fr10"), "test_rmse_px": test.get("rmse_px"),
                     "epochs": metrics.get("epochs"), "fit_seconds": metrics.get("fit_seconds")})
    if not rows:
        raise KeypointsError(f"{sweep_dir}: no job folders with .hydra/overrides.yaml in it")
    return rows


def read_overrides(path: Path) -> dict:
    """A job's .hydra/overrides.yaml (a list of key=value strings) as a dict; ValueError saying why not."""
    try:
        items = yaml.safe_load(path.read_text()) or []
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as e:
        raise ValueError(_first_line(e)) from None
    if not isinstance(items, list) or not all(isinstance(o, str) for o in items):
        raise ValueError("not a list of key=value strings")
    return dict(o.split("=", 1) for o in items if "=" in o)


def read_metrics(path: Path) -> tuple[dict, dict]:
    """A job's metrics.json (as training.loop writes it) -> (its metrics, its `test` metrics), each
    read value a number or null; ValueError saying why not."""
    try:
        metrics = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, RecursionError, ValueError) as e:
        raise ValueError(_first_line(e)) from None
    test = (metrics.get("test") or {}) if isinstance(metrics, dict) else None
    if not isinstance(metrics, dict) or not isinstance(test, dict):
        raise ValueError("not a JSON object with a `test` object")
    values = [metrics.get(k) for k in ("best_val_nme", "epochs", "fit_seconds")] + [test.get(k) for k in ("nme", "fr10", "rmse_px")]
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        raise ValueError("a metric that is not a number")
    return metrics, test


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:80]

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
        fig.savefig(temp, dpi=120, format=Path(path).suffix.lstrip(".") or "png")  # the temporary name has no suffix
