"""The SQLite store of sweep and training results (docs/design.md §4, §6).

One row per unit of work, keyed by :func:`approx.records.config_hash` of the unit's configuration. A sweep asks
the store before computing a unit and writes each finished unit in its own transaction, so an existing result is
reused and a killed sweep redoes only the units it had not written. A row holds the result record (JSON) and its
arrays (NumPy ``.npz`` bytes, exact), so the numbers read back are the numbers computed.

Long units (training runs) also keep **checkpoints** here: one row per unit in progress, replaced in one
transaction each time (SQLite commits are atomic, so a killed writer leaves the previous checkpoint intact), and
deleted in the same transaction that writes the unit's results (:meth:`Store.finish`).

The store carries a **format mark** (table ``meta``, ``format`` = :data:`FORMAT`). A store marked with another
format was written by another version of the lab and is refused with a ValueError before anything in it is
touched. A store without the mark holding only the format-1 ``results`` table (the layout before checkpoints) is
upgraded in place by adding the new tables: nothing in it changes.

Default file: ``./runs.sqlite``.
"""
from __future__ import annotations

import contextlib
import io
import json
import sqlite3
import time
from importlib import metadata
from pathlib import Path

import numpy as np

from .records import config_hash, to_json

DEFAULT_PATH = "runs.sqlite"
FORMAT = 2
RESULT_COLUMNS = ["key", "kind", "config", "record", "arrays", "created"]

_TABLES = (
    """CREATE TABLE IF NOT EXISTS results (
        key     TEXT PRIMARY KEY,
        kind    TEXT NOT NULL,
        config  TEXT NOT NULL,
        record  TEXT NOT NULL,
        arrays  BLOB,
        created REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS checkpoints (
        key      TEXT PRIMARY KEY,
        kind     TEXT NOT NULL,
        config   TEXT NOT NULL,
        progress TEXT NOT NULL,
        state    BLOB NOT NULL,
        created  REAL NOT NULL)""",
    "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)",
)


def _pack(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    return buf.getvalue()


def _unpack(blob) -> dict:
    if blob is None:
        return {}
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def _lab_version() -> str:
    try:
        return metadata.version("ssm-approx-lab")
    except metadata.PackageNotFoundError:
        return "unknown"


class Store:
    """A results store in one SQLite file.

    Parameters
    ----------
    path : file name (created with its folder if missing). A file that is not a SQLite database, a database
        without the expected table layout, or a store of another format raises ``ValueError`` naming the path;
        such a file is left exactly as it was.

    Use as a context manager (``with Store(p) as s:``) or call :meth:`close`. Several processes may share one
    file (SQLite serialises their writes; a writer waits up to 60 s for the lock).
    """

    def __init__(self, path=DEFAULT_PATH):
        self.path = Path(path)
        if self.path.is_dir():
            raise ValueError(f"store {str(self.path)!r} is a directory, not a SQLite file")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), timeout=60, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise ValueError(f"cannot open store {str(self.path)!r}: {e}") from None
        try:
            self._open()
        except BaseException:
            self._db.close()
            raise

    def _open(self):
        where = f"store {str(self.path)!r}"
        try:
            with self._transaction():
                tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
                if "meta" in tables:
                    row = self._db.execute("SELECT value FROM meta WHERE name = 'format'").fetchone()
                    found = row[0] if row else "none"
                    if found != str(FORMAT):
                        raise ValueError(f"{where} was written by another version of the lab (store format "
                                         f"{found}; this lab reads format {FORMAT}); use another --store file")
                if "results" in tables:
                    cols = [r[1] for r in self._db.execute("PRAGMA table_info(results)")]
                    if cols != RESULT_COLUMNS:
                        raise ValueError(f"{where} has an unexpected 'results' table (columns {cols})")
                if "meta" not in tables:
                    for sql in _TABLES:
                        self._db.execute(sql)
                    self._db.executemany("INSERT INTO meta VALUES (?, ?)",
                                         [("format", str(FORMAT)), ("writer", f"ssm-approx-lab {_lab_version()}")])
        except sqlite3.Error as e:
            raise ValueError(f"{where} is not a usable SQLite results store: {e}") from None

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken first, so concurrent writers queue)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self._db.close()

    def _read(self, sql: str, args=()):
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as e:
            raise ValueError(f"store {str(self.path)!r} cannot be read: {e}") from None

    def _write(self, statements):
        try:
            with self._transaction():
                for sql, args in statements:
                    self._db.execute(sql, args)
        except sqlite3.Error as e:
            raise ValueError(f"store {str(self.path)!r} cannot be written: {e}") from None

    @staticmethod
    def key(config: dict) -> str:
        """The key of a configuration (:func:`approx.records.config_hash`)."""
        return config_hash(config)

    @staticmethod
    def _result_row(config: dict, record: dict, arrays: dict | None):
        return (Store.key(config), str(config.get("kind", "")), json.dumps(config, sort_keys=True, default=str),
                to_json(record), _pack(arrays) if arrays else None, time.time())

    def get(self, config: dict):
        """``(record, arrays)`` stored for ``config``, or ``None`` if it has not been computed."""
        rows = self._read("SELECT record, arrays FROM results WHERE key = ?", (self.key(config),))
        if not rows:
            return None
        return json.loads(rows[0][0]), _unpack(rows[0][1])

    def get_key(self, key: str):
        """``(config, record, arrays)`` stored under ``key``, or ``None``."""
        rows = self._read("SELECT config, record, arrays FROM results WHERE key = ?", (key,))
        if not rows:
            return None
        return json.loads(rows[0][0]), json.loads(rows[0][1]), _unpack(rows[0][2])

    def put(self, config: dict, record: dict, arrays: dict | None = None) -> str:
        """Write (or replace) the result of ``config`` in one transaction; return its key."""
        row = self._result_row(config, record, arrays)
        self._write([("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", row)])
        return row[0]

    def delete(self, config: dict) -> bool:
        """Remove the result of ``config``; return whether there was one."""
        with self._transaction():
            cur = self._db.execute("DELETE FROM results WHERE key = ?", (self.key(config),))
        return cur.rowcount > 0

    def keys(self, kind: str | None = None) -> list:
        """Keys of the stored results, optionally only those of one ``kind``."""
        if kind is None:
            return [r[0] for r in self._read("SELECT key FROM results ORDER BY created")]
        return [r[0] for r in self._read("SELECT key FROM results WHERE kind = ? ORDER BY created", (kind,))]

    def configs(self, kind: str) -> list:
        """``(key, config)`` of every stored result of ``kind``, oldest first."""
        rows = self._read("SELECT key, config FROM results WHERE kind = ? ORDER BY created", (kind,))
        return [(k, json.loads(c)) for k, c in rows]

    def __len__(self):
        return self._read("SELECT COUNT(*) FROM results")[0][0]

    # checkpoints of units in progress

    def put_checkpoint(self, config: dict, state: bytes, progress: dict) -> str:
        """Replace the checkpoint of the unit ``config`` by ``state`` (opaque bytes) in one transaction.

        ``progress`` is a small JSON-able summary (e.g. epoch and step) shown without loading the state."""
        key = self.key(config)
        row = (key, str(config.get("kind", "")), json.dumps(config, sort_keys=True, default=str),
               json.dumps(progress, sort_keys=True), sqlite3.Binary(state), time.time())
        self._write([("INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)", row)])
        return key

    def get_checkpoint(self, config: dict):
        """``(state, progress)`` of the unit ``config`` in progress, or ``None``."""
        rows = self._read("SELECT state, progress FROM checkpoints WHERE key = ?", (self.key(config),))
        if not rows:
            return None
        return bytes(rows[0][0]), json.loads(rows[0][1])

    def checkpoints(self, kind: str | None = None) -> list:
        """``(key, progress)`` of the units in progress, optionally only those of one ``kind``."""
        sql, args = "SELECT key, progress FROM checkpoints", ()
        if kind is not None:
            sql, args = sql + " WHERE kind = ?", (kind,)
        return [(k, json.loads(p)) for k, p in self._read(sql + " ORDER BY created", args)]

    def finish(self, results, checkpoint: dict | None = None) -> list:
        """Write ``results`` (an iterable of ``(config, record, arrays)``) and delete the checkpoint of the unit
        ``checkpoint``, all in one transaction; return the keys written."""
        rows = [self._result_row(c, r, a) for c, r, a in results]
        statements = [("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", row) for row in rows]
        if checkpoint is not None:
            statements.append(("DELETE FROM checkpoints WHERE key = ?", (self.key(checkpoint),)))
        self._write(statements)
        return [row[0] for row in rows]

    def copy_to(self, dst, *, max_blob_bytes: int | None = None) -> dict:
        """Copy this store into a new file ``dst`` (which must not exist), for carrying between machines.

        With ``max_blob_bytes``, results keep their records but lose stored weights (``arrays``) larger than
        that, and checkpoints larger than that are left out (their units start again where the copy is used).
        Returns ``{"results": n, "weights_dropped": n, "checkpoints": n, "checkpoints_dropped": n}``."""
        dst = Path(dst)
        if dst.exists():
            raise ValueError(f"cannot copy store to {str(dst)!r}: the file exists")
        try:
            self._db.execute("VACUUM INTO ?", (str(dst),))
            db = sqlite3.connect(str(dst), isolation_level=None)
            try:
                limit = -1 if max_blob_bytes is None else int(max_blob_bytes)
                big = "? >= 0 AND length({}) > ?"
                dropped = db.execute("UPDATE results SET arrays = NULL WHERE " + big.format("arrays"),
                                     (limit, limit)).rowcount
                ck_dropped = db.execute("DELETE FROM checkpoints WHERE " + big.format("state"), (limit, limit)).rowcount
                if dropped or ck_dropped:
                    db.execute("VACUUM")
                counts = {"results": db.execute("SELECT COUNT(*) FROM results").fetchone()[0],
                          "weights_dropped": dropped,
                          "checkpoints": db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0],
                          "checkpoints_dropped": ck_dropped}
            finally:
                db.close()
        except sqlite3.Error as e:
            raise ValueError(f"cannot copy store {str(self.path)!r} to {str(dst)!r}: {e}") from None
        return counts
