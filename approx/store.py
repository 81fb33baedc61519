"""The SQLite store of sweep and training results (DESIGN §4).

One row per unit of work, keyed by :func:`approx.records.config_hash` of the unit's configuration. A sweep asks
the store before computing a unit and writes each finished unit in its own transaction, so an existing result is
reused and a killed sweep redoes only the units it had not written. A row holds the result record (JSON) and its
arrays (NumPy ``.npy`` bytes, exact float64), so the numbers read back are the numbers computed.

Default file: ``./runs.sqlite``.
"""
from __future__ import annotations

import io
import json
import sqlite3
import time
from pathlib import Path

import numpy as np

from .records import config_hash, to_json

DEFAULT_PATH = "runs.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    key     TEXT PRIMARY KEY,
    kind    TEXT NOT NULL,
    config  TEXT NOT NULL,
    record  TEXT NOT NULL,
    arrays  BLOB,
    created REAL NOT NULL
)
"""


def _pack(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _unpack(blob) -> dict:
    if blob is None:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


class Store:
    """A results store in one SQLite file.

    Parameters
    ----------
    path : file name (created with its folder if missing). A file that is not a SQLite database, or a database
        without the expected table layout, raises ``ValueError`` naming the path.

    Use as a context manager (``with Store(p) as s:``) or call :meth:`close`.
    """

    def __init__(self, path=DEFAULT_PATH):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"--store {str(self.path)!r} is a directory, not a SQLite file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=30)
        except (OSError, sqlite3.Error) as e:
            raise ValueError(f"cannot open store {str(self.path)!r}: {e}") from None
        try:
            with self._db:
                self._db.execute(_SCHEMA)
            cols = [r[1] for r in self._db.execute("PRAGMA table_info(results)")]
        except sqlite3.Error as e:
            self._db.close()
            raise ValueError(f"store {str(self.path)!r} is not a usable SQLite results store: {e}") from None
        if cols != ["key", "kind", "config", "record", "arrays", "created"]:
            self._db.close()
            raise ValueError(f"store {str(self.path)!r} has an unexpected 'results' table (columns {cols})")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._db.close()

    @staticmethod
    def key(config: dict) -> str:
        """The key of a configuration (:func:`approx.records.config_hash`)."""
        return config_hash(config)

    def get(self, config: dict):
        """``(record, arrays)`` stored for ``config``, or ``None`` if it has not been computed."""
        try:
            row = self._db.execute("SELECT record, arrays FROM results WHERE key = ?",
                                   (self.key(config),)).fetchone()
        except sqlite3.Error as e:
            raise ValueError(f"store {str(self.path)!r} cannot be read: {e}") from None
        if row is None:
            return None
        return json.loads(row[0]), _unpack(row[1])

    def put(self, config: dict, record: dict, arrays: dict | None = None) -> str:
        """Write (or replace) the result of ``config`` in one transaction; return its key."""
        key = self.key(config)
        row = (key, str(config.get("kind", "")), json.dumps(config, sort_keys=True, default=str),
               to_json(record), _pack(arrays) if arrays else None, time.time())
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", row)
        except sqlite3.Error as e:
            raise ValueError(f"store {str(self.path)!r} cannot be written: {e}") from None
        return key

    def delete(self, config: dict) -> bool:
        """Remove the result of ``config``; return whether there was one."""
        with self._db:
            cur = self._db.execute("DELETE FROM results WHERE key = ?", (self.key(config),))
        return cur.rowcount > 0

    def keys(self, kind: str | None = None) -> list:
        """Keys of the stored results, optionally only those of one ``kind``."""
        if kind is None:
            rows = self._db.execute("SELECT key FROM results ORDER BY created")
        else:
            rows = self._db.execute("SELECT key FROM results WHERE kind = ? ORDER BY created", (kind,))
        return [r[0] for r in rows]

    def __len__(self):
        return self._db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
