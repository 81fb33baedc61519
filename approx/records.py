"""Result records (DESIGN §4): configuration, metrics, seed, package versions, device name and wall time.

Every command that computes something builds one record; the CLI prints it as a table or JSON and sweeps keep
them in the SQLite store. Files are written atomically (temporary file + rename) so nothing a user ran is lost
half-written.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from importlib import metadata
from pathlib import Path

PACKAGES = ("torch", "triton", "numpy", "scipy", "pywavelets", "matplotlib", "click")


def versions() -> dict:
    """Installed versions of the packages the lab depends on (``None`` where one is missing)."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def device_name(device) -> str:
    """Human name of a torch device: the GPU's name on CUDA, the processor otherwise."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine() or "cpu"


def config_hash(config: dict) -> str:
    """Stable key of a configuration: SHA-256 of its canonical JSON (sorted keys)."""
    blob = json.dumps(config, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def make_record(config: dict, metrics: dict, *, seed, device, wall_s: float, **extra) -> dict:
    """One result record (DESIGN §4)."""
    record = {
        "config": config,
        "key": config_hash(config),
        "metrics": metrics,
        "seed": seed,
        "device": device_name(device),
        "versions": versions(),
        "wall_s": round(float(wall_s), 4),
    }
    record.update(extra)
    return record


def to_json(obj) -> str:
    """JSON text of a record; tensors and numpy values become lists and numbers."""
    def default(o):
        if hasattr(o, "tolist"):
            return o.tolist()
        if hasattr(o, "item"):
            return o.item()
        return str(o)

    return json.dumps(obj, indent=2, default=default)


def atomic_write(path, data, mode: str = "w") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
