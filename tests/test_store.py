"""approx.store: the SQLite results store (DESIGN §4) — round trips, reuse by key, bad files."""
import sqlite3

import numpy as np
import pytest

from approx.records import config_hash
from approx.store import Store


def test_put_get_round_trip_is_exact_and_keyed_by_config_hash(tmp_path):
    cfg = {"kind": "k", "m": 2, "basis": "haar"}
    arr = np.random.default_rng(0).standard_normal((5, 7))
    with Store(tmp_path / "runs.sqlite") as s:
        assert s.get(cfg) is None
        key = s.put(cfg, {"metrics": {"x": 1.5}}, {"l2_sq": arr, "floor": arr[:, 0]})
        assert key == config_hash(cfg) and len(s) == 1
    with Store(tmp_path / "runs.sqlite") as s:                       # persists across connections
        rec, arrays = s.get({"basis": "haar", "m": 2, "kind": "k"})   # key order does not matter
        assert rec == {"metrics": {"x": 1.5}}
        assert np.array_equal(arrays["l2_sq"], arr) and np.array_equal(arrays["floor"], arr[:, 0])
        assert s.get({**cfg, "m": 3}) is None


def test_put_replaces_delete_removes_and_keys_filter_by_kind(tmp_path):
    with Store(tmp_path / "a" / "runs.sqlite") as s:                 # the folder is created
        s.put({"kind": "a", "i": 1}, {"v": 1})
        s.put({"kind": "a", "i": 1}, {"v": 2})
        s.put({"kind": "b", "i": 1}, {"v": 3})
        assert len(s) == 2 and s.get({"kind": "a", "i": 1})[0] == {"v": 2}
        assert s.get({"kind": "a", "i": 1})[1] == {}
        assert s.keys("b") == [config_hash({"kind": "b", "i": 1})]
        assert s.delete({"kind": "a", "i": 1}) and not s.delete({"kind": "a", "i": 1})
        assert len(s) == 1


def test_corrupt_file_is_a_one_line_value_error(tmp_path):
    bad = tmp_path / "runs.sqlite"
    bad.write_bytes(b"this is not a database, just some text" * 100)
    with pytest.raises(ValueError, match="runs.sqlite.*not a usable SQLite"):
        Store(bad)


def test_foreign_table_layout_and_directory_are_rejected(tmp_path):
    other = tmp_path / "other.sqlite"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE results (a TEXT, b TEXT)")
    con.commit()
    con.close()
    with pytest.raises(ValueError, match="unexpected 'results' table"):
        Store(other)
    with pytest.raises(ValueError, match="is a directory"):
        Store(tmp_path)
