"""Result records (docs/design.md §4): configuration, metrics, seed, package versions, device and wall time.

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


def device_label(device) -> str:
    """The torch device a computation ran on, as torch names it with its index: ``"cpu"``, ``"cuda:0"``."""
    import torch

    device = torch.device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())
    return str(device)


def device_name(device) -> str:
    """Human name of a torch device's hardware: the GPU's name on CUDA, the processor otherwise."""
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
    """One result record (docs/design.md §4): ``device`` is the torch device (``"cpu"``, ``"cuda:0"``) and
    ``device_name`` its hardware (the GPU's or the processor's name)."""
    record = {
        "config": config,
        "key": config_hash(config),
        "metrics": metrics,
        "seed": seed,
        "device": device_label(device),
        "device_name": device_name(device),
        "versions": versions(),
        "wall_s": round(float(wall_s), 4),
    }
    record.update(extra)
    return record


def _plain(o):
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    return str(o)


def to_json(obj) -> str:
    """JSON text of a record, indented at the top level only (one line per field, each value compact);
    tensors and numpy values become lists and numbers."""
    if not isinstance(obj, dict):
        return json.dumps(obj, default=_plain)
    lines = [f"  {json.dumps(k)}: {json.dumps(v, default=_plain, separators=(', ', ': '))}" for k, v in obj.items()]
    return "{\n" + ",\n".join(lines) + "\n}" if lines else "{}"


def check_output_path(name: str, path, suffixes=None) -> Path:
    """Fail before a long computation, not after: the path's folder must exist and be writable (no folder is
    ever created), the path must not be a folder, and its suffix one of ``suffixes``. Raises ValueError naming
    ``name`` (the argument, or the option as the caller calls it) and the path."""
    p = Path(path)
    if suffixes and p.suffix.lower() not in suffixes:
        raise ValueError(f"{name} {str(p)!r} must end in {' or '.join(suffixes)}")
    if p.is_dir():
        raise ValueError(f"{name} {str(p)!r} is a folder, not a file")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"{name} {str(p)!r}: folder {str(parent)!r} does not exist")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise ValueError(f"{name} {str(p)!r} is not writable")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path, data, mode: str = "w") -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and an atomic rename; the file gets
    the permissions a plain ``open()`` would give it (0666 less the umask), not the temporary file's 0600."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=f".{path.name}.",
                               suffix=".tmp")
    try:
        with os.fdopen(fd, mode) as f:
            f.write(data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
