"""approx.store: the SQLite results store (docs/design.md §4, §6) — round trips, reuse by key, bad files, the
format mark, checkpoints."""
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


def _bytes(path):
    return path.read_bytes()


def test_a_store_of_another_format_is_refused_and_left_untouched(tmp_path):
    path = tmp_path / "runs.sqlite"
    with Store(path) as s:
        s.put({"kind": "k", "i": 1}, {"v": 1})
    con = sqlite3.connect(path)
    con.execute("UPDATE meta SET value = '99' WHERE name = 'format'")
    con.commit()
    con.close()
    before = _bytes(path)
    with pytest.raises(ValueError, match=r"written by another version of the lab \(store format 99; this lab reads "
                                         r"format 2\)"):
        Store(path)
    assert _bytes(path) == before


def test_a_format_1_store_is_upgraded_in_place_with_its_results_kept(tmp_path):
    path = tmp_path / "old.sqlite"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE results (key TEXT PRIMARY KEY, kind TEXT NOT NULL, config TEXT NOT NULL, "
                "record TEXT NOT NULL, arrays BLOB, created REAL NOT NULL)")
    con.execute("INSERT INTO results VALUES ('abc', 'k', '{}', '{\"v\": 7}', NULL, 0)")
    con.commit()
    con.close()
    with Store(path) as s:
        assert len(s) == 1 and s.keys() == ["abc"]
        assert s.checkpoints() == []
    con = sqlite3.connect(path)
    assert con.execute("SELECT value FROM meta WHERE name = 'format'").fetchone() == ("2",)
    con.close()


def test_checkpoints_replace_and_finish_deletes_them_with_the_results_written(tmp_path):
    unit = {"kind": "train-group", "members": ["a", "b"]}
    with Store(tmp_path / "runs.sqlite") as s:
        assert s.get_checkpoint(unit) is None
        s.put_checkpoint(unit, b"first", {"epoch": 1})
        s.put_checkpoint(unit, b"\x00second", {"epoch": 2})
        assert s.get_checkpoint(unit) == (b"\x00second", {"epoch": 2})
        assert s.checkpoints("train-group") == [(config_hash(unit), {"epoch": 2})]
        keys = s.finish([({"kind": "train", "m": 1}, {"r": 1}, {"w": np.arange(3)}),
                         ({"kind": "train", "m": 2}, {"r": 2}, None)], checkpoint=unit)
        assert s.get_checkpoint(unit) is None and len(s) == 2
        assert keys == [config_hash({"kind": "train", "m": 1}), config_hash({"kind": "train", "m": 2})]
        assert [c for _, c in s.configs("train")] == [{"kind": "train", "m": 1}, {"kind": "train", "m": 2}]
        assert np.array_equal(s.get({"kind": "train", "m": 1})[1]["w"], np.arange(3))


def test_copy_to_keeps_records_and_drops_only_blobs_over_the_limit(tmp_path):
    small, big = np.zeros(4), np.arange(5000.0)
    with Store(tmp_path / "runs.sqlite") as s:
        s.put({"kind": "a", "i": 1}, {"v": 1}, {"w": small})
        s.put({"kind": "a", "i": 2}, {"v": 2}, {"w": big})
        s.put_checkpoint({"kind": "a", "i": 3}, b"x" * 10, {"step": 1})
        s.put_checkpoint({"kind": "a", "i": 4}, b"x" * 100_000, {"step": 2})
        whole = s.copy_to(tmp_path / "whole.sqlite")
        slim = s.copy_to(tmp_path / "slim.sqlite", max_blob_bytes=20_000)
        with pytest.raises(ValueError, match="exists"):
            s.copy_to(tmp_path / "slim.sqlite")
    assert whole == {"results": 2, "weights_dropped": 0, "checkpoints": 2, "checkpoints_dropped": 0}
    assert slim == {"results": 2, "weights_dropped": 1, "checkpoints": 1, "checkpoints_dropped": 1}
    with Store(tmp_path / "slim.sqlite") as c:
        assert np.array_equal(c.get({"kind": "a", "i": 1})[1]["w"], small)
        assert c.get({"kind": "a", "i": 2}) == ({"v": 2}, {})          # the record stays, the weights go
        assert c.get_checkpoint({"kind": "a", "i": 3}) == (b"x" * 10, {"step": 1})
        assert c.get_checkpoint({"kind": "a", "i": 4}) is None
    with Store(tmp_path / "whole.sqlite") as c:
        assert np.array_equal(c.get({"kind": "a", "i": 2})[1]["w"], big)
        assert c.get_checkpoint({"kind": "a", "i": 4})[1] == {"step": 2}
