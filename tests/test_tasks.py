"""Task generators (KEEP n-TH, MQAR, INDUCTION HEADS) against their definitions, and the task-file reader."""
import numpy as np
import pytest
import torch

from signals.tasks import (IGNORE, induction_heads, induction_targets, keep_nth, load_task_file, mqar,
                           save_task_file)


pytestmark = pytest.mark.usefixtures("one_thread")


def brute_induction(x, vocab):
    """y_t = x_{j(t)+1}, j(t) = max{j < t : x_j = x_t}, or the blank ``vocab`` (Sec. 5.2), by plain search."""
    out = []
    for t in range(len(x)):
        prev = [j for j in range(t) if x[j] == x[t]]
        out.append(x[prev[-1] + 1] if prev else vocab)
    return out


@pytest.mark.parametrize("T,n,V", [(50, 5, 128), (7, 1, 2), (9, 9, 3), (100, 37, 10)])
def test_keep_nth_targets_and_mask(T, n, V):
    b = keep_nth(20, T, n, V, seed=3)
    assert b.inputs.shape == b.targets.shape == b.mask.shape == (20, T)
    assert b.inputs.dtype == torch.int64 and b.mask.dtype == torch.bool
    assert 0 <= int(b.inputs.min()) and int(b.inputs.max()) < V
    assert b.mask[:, n - 1:].all() and not b.mask[:, :n - 1].any()         # scored at t = n..T (1-based)
    assert (b.targets[b.mask] == b.inputs[:, n - 1:n].expand(20, T)[b.mask]).all()
    assert (b.targets[~b.mask] == IGNORE).all()


def test_generators_are_seeded():
    for make in (lambda s: keep_nth(5, 20, 3, 10, seed=s), lambda s: mqar(5, 30, 4, 10, seed=s),
                 lambda s: induction_heads(5, 30, 6, hard_prob=0.5, seed=s)):
        a, b, c = make(1), make(1), make(2)
        assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert not torch.equal(a.inputs, c.inputs)


@pytest.mark.parametrize("T,kappa,V", [(100, 8, 128), (12, 4, 2), (30, 10, 40), (3, 1, 5)])
def test_mqar_format(T, kappa, V):
    b = mqar(50, T, kappa, V, seed=5)
    x, y, m = b.inputs, b.targets, b.mask
    for s in range(50):
        keys, vals = x[s, 0:2 * kappa:2].tolist(), x[s, 1:2 * kappa:2].tolist()
        assert sorted(keys) == list(range(kappa))                         # every key once in the pairs
        assert all(kappa <= v < kappa + V for v in vals)
        pair = dict(zip(keys, vals))
        q = m[s].nonzero().flatten().tolist()
        assert len(q) == kappa and min(q) >= 2 * kappa
        assert sorted(x[s, q].tolist()) == list(range(kappa))             # every key queried once
        for t in q:
            assert int(y[s, t]) == pair[int(x[s, t])] - kappa             # target: the value index j
        rest = [t for t in range(2 * kappa, T) if t not in q]
        assert all(kappa <= int(x[s, t]) < kappa + V for t in rest)       # noise are values
        assert (y[s, ~m[s]] == IGNORE).all()


def test_induction_paper_example():
    """App. C.2: x = [2,1,3,2,4,3,2,4] → y = [×,×,×,1,×,2,4,3] (tokens shifted to 0-based, × = |V|)."""
    x = torch.tensor([[2, 1, 3, 2, 4, 3, 2, 4]]) - 1
    want = torch.tensor([[4, 4, 4, 0, 4, 1, 3, 2]])
    assert torch.equal(induction_targets(x, 4), want)


@pytest.mark.parametrize("V,T,hard", [(5, 50, 0.0), (10, 100, 1.0), (40, 50, 0.5), (2, 20, 1.0)])
def test_induction_targets_match_definition(V, T, hard):
    b = induction_heads(30, T, V, hard_prob=hard, seed=11)
    assert b.mask.all()
    for s in range(30):
        assert b.targets[s].tolist() == brute_induction(b.inputs[s].tolist(), V)


def test_induction_hard_setting_places_special_token():
    T, V, gamma = 100, 10, 0.1
    b = induction_heads(200, T, V, hard_prob=1.0, gamma=gamma, seed=4)
    for s in range(200):
        x = b.inputs[s].tolist()
        counts = np.bincount(x, minlength=V)
        specials = [v for v in range(V) if counts[v] == 2 and
                    (pos := [i + 1 for i, t in enumerate(x) if t == v]) and pos[0] + pos[1] == T and
                    pos[0] <= gamma * T]
        assert specials, f"sequence {s}: no token at r and T − r with r ≤ γT"
        v = specials[0]
        r = x.index(v) + 1
        assert b.targets[s, T - r - 1] == x[r]                           # query at T − r answers x_{r+1}


def test_induction_positions_repeat_masks_first_occurrences():
    b = induction_heads(10, 30, 8, positions="repeat", seed=0)
    full = induction_targets(b.inputs, 8)
    assert torch.equal(b.mask, full != 8)


@pytest.mark.parametrize("call,msg", [
    (lambda: keep_nth(5, 10, 11, 5), "n must be at most the sequence length T=10"),
    (lambda: keep_nth(5, 10, 0, 5), "n must be an integer ≥ 1"),
    (lambda: keep_nth(5, 10, 2, 1), "vocab must be an integer ≥ 2"),
    (lambda: keep_nth(0, 10, 2, 5), "samples must be an integer ≥ 1"),
    (lambda: mqar(5, 11, 4, 10), "length ≥ 3·kappa = 12"),
    (lambda: induction_heads(5, 30, 1), "vocab must be an integer ≥ 2"),
    (lambda: induction_heads(5, 30, 5, hard_prob=1.5), "hard_prob must lie in"),
    (lambda: induction_heads(5, 5, 5, hard_prob=1.0), "the hard setting needs"),
    (lambda: keep_nth(5, 10, 2, 5, seed=-1), "seed must be an integer ≥ 0"),
])
def test_generators_reject_bad_arguments(call, msg):
    with pytest.raises(ValueError, match=msg):
        call()


def test_task_file_round_trip(tmp_path):
    b = induction_heads(7, 20, 5, hard_prob=0.5, seed=1)
    path = save_task_file(tmp_path / "ih.npz", b)
    got = load_task_file(path, vocab_size=5, num_classes=6)
    assert all(torch.equal(x, y) for x, y in zip(b, got))


def _write(tmp_path, **arrays):
    path = tmp_path / "t.npz"
    np.savez(path, **arrays)
    return path


GOOD = {"inputs": np.array([[0, 1, 2], [2, 1, 0]]), "targets": np.array([[-1, 1, 2], [-1, 0, 0]]),
        "mask": np.array([[False, True, True], [False, True, True]])}


@pytest.mark.parametrize("change,msg", [
    ({"mask": None}, r"missing array\(s\) 'mask'"),
    ({"inputs": None, "targets": None}, r"missing array\(s\) 'inputs', 'targets'"),
    ({"inputs": np.array([0, 1, 2])}, r"'inputs' must have shape \(samples, T\)"),
    ({"targets": np.zeros((2, 4), int)}, r"'targets' must have the shape of 'inputs'"),
    ({"mask": np.ones((3, 3), bool)}, r"'mask' must have the shape of 'inputs'"),
    ({"inputs": np.array([[0, np.nan, 2], [2, 1, 0]])}, "'inputs' contains NaN"),
    ({"targets": np.array([[0, 1, np.inf], [0, 0, 0]])}, "'targets' contains infinite values"),
    ({"inputs": np.array([[0, 1.5, 2], [2, 1, 0]])}, "non-integer"),
    ({"inputs": np.array([[0, 1, 3], [2, 1, 0]])}, r"'inputs' tokens must lie in \[0, 3\)"),
    ({"inputs": np.array([[0, -1, 2], [2, 1, 0]])}, r"'inputs' tokens must lie in \[0, 3\)"),
    ({"targets": np.array([[-1, 1, 4], [-1, 0, 0]])}, r"'targets' at scored positions must lie in \[0, 3\)"),
    ({"mask": np.zeros((2, 3), bool)}, "'mask' scores no position"),
    ({"mask": np.full((2, 3), 2)}, "'mask' must be boolean or 0/1"),
    ({"inputs": np.array([["a", "b", "c"], ["a", "b", "c"]])}, "'inputs' must have an integer dtype"),
    ({"inputs": np.zeros((0, 3), int), "targets": np.zeros((0, 3), int), "mask": np.zeros((0, 3), bool)},
     r"both ≥ 1"),
])
def test_task_file_rejects_malformed(tmp_path, change, msg):
    arrays = {k: v for k, v in {**GOOD, **change}.items() if v is not None}
    with pytest.raises(ValueError, match=msg):
        load_task_file(_write(tmp_path, **arrays), vocab_size=3, num_classes=3)


def test_task_file_accepts_integer_floats_and_01_mask(tmp_path):
    path = _write(tmp_path, inputs=GOOD["inputs"].astype(float), targets=GOOD["targets"],
                  mask=GOOD["mask"].astype(np.int8))
    b = load_task_file(path, vocab_size=3, num_classes=3)
    assert b.inputs.dtype == torch.int64 and b.mask.dtype == torch.bool
    assert (b.targets[~b.mask] == IGNORE).all()


def test_task_file_not_an_archive(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        load_task_file(tmp_path / "none.npz", vocab_size=3, num_classes=3)
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="not a .npz archive"):
        load_task_file(npy, vocab_size=3, num_classes=3)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"this is not a zip file")
    with pytest.raises(ValueError, match="cannot read as .npz"):
        load_task_file(junk, vocab_size=3, num_classes=3)


# the counter-based generator and the task registry ------------------------------------------------------------

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_counter_streams_equal_scalar_splitmix64(device):
    from signals.tasks.counter import MASK64, bits, splitmix64, stream
    for state in (0, 1, stream(7, 3), (1 << 64) - 1):
        got = bits(state, (3, 5), device=device).cpu().flatten().tolist()
        assert [g & MASK64 for g in got] == [splitmix64(state, i) for i in range(15)]
    rows = bits([5, 9], (2, 4), device=device).cpu().tolist()
    assert [[x & MASK64 for x in r] for r in rows] == [[splitmix64(s, i) for i in range(4)] for s in (5, 9)]
    assert splitmix64(0, 0) == 0xE220A8397B1DCDAF                 # the first output of SplitMix64 seeded with 0


def test_counter_integers_are_uniform_and_permutations_are_permutations():
    from signals.tasks.counter import integers, permutations, stream
    x = integers(stream(1), (200_000,), 128)
    counts = torch.bincount(x, minlength=128).double()
    chi2 = float(((counts - counts.mean()) ** 2 / counts.mean()).sum())
    assert 0 <= int(x.min()) and int(x.max()) < 128 and chi2 < 127 + 6 * (2 * 127) ** 0.5
    p = permutations([stream(2), stream(3)], 50)
    assert all(sorted(r) == list(range(50)) for r in p.tolist()) and not torch.equal(p[0], p[1])
    with pytest.raises(ValueError, match="non-negative integers"):
        stream(-1)


@pytest.mark.parametrize("device", DEVICES)
def test_keep_nth_is_the_same_on_every_device_and_scores_the_chosen_positions(device):
    a = keep_nth(7, 12, 5, 128, seed=4)
    b = keep_nth(7, 12, 5, 128, seed=4, device=device)
    assert all(torch.equal(x, y.cpu()) for x, y in zip(a, b))
    after = keep_nth(7, 12, 5, 128, seed=4, positions="after-n")
    assert torch.equal(after.inputs, a.inputs)
    assert after.mask[:, 5:].all() and not after.mask[:, :5].any()          # t = 6..12: t > n
    with pytest.raises(ValueError, match="positions must be one of from-n, after-n"):
        keep_nth(7, 12, 5, 128, positions="all")
    with pytest.raises(ValueError, match="empty for n = T = 5"):
        keep_nth(3, 5, 5, 8, positions="after-n")


def test_registry_configs_generate_record_and_refuse():
    from signals.tasks import TASK_CONFIGS, make_task, task_from_dict
    assert set(TASK_CONFIGS) == {"keep-nth", "mqar", "induction", "mqar-latest"}
    k = make_task("keep-nth", length=10, nth=3, vocab=9)
    assert (k.vocab_size, k.num_classes) == (9, 9) and task_from_dict(k.to_dict()) == k
    assert torch.equal(k.generate(4, 1).inputs, keep_nth(4, 10, 3, 9, seed=1).inputs)
    m = make_task("mqar", length=12, kappa=2, vocab=5)
    assert (m.vocab_size, m.num_classes) == (7, 5) and torch.equal(m.generate(3, 2).targets,
                                                                    mqar(3, 12, 2, 5, seed=2).targets)
    i = make_task("induction", length=20, vocab=4)
    assert (i.vocab_size, i.num_classes, i.hard_prob) == (4, 5, 0.75)
    for call, msg in ((lambda: make_task("copy"), "task must be one of keep-nth, mqar, induction"),
                      (lambda: make_task("keep-nth", kappa=3), "kappa does not apply to task keep-nth"),
                      (lambda: make_task("keep-nth", nth=11, length=10), "nth must be at most the sequence length"),
                      (lambda: make_task("mqar", length=5, kappa=2), "MQAR needs length ≥ 3·kappa = 6"),
                      (lambda: make_task("induction", length=8), "the hard setting needs")):
        with pytest.raises(ValueError, match=msg):
            call()


def test_induction_positions_hard_scores_the_second_special_token_only():
    b = induction_heads(200, 50, 6, hard_prob=0.5, gamma=0.1, positions="hard", seed=3)
    every = induction_heads(200, 50, 6, hard_prob=0.5, gamma=0.1, seed=3)
    assert torch.equal(b.inputs, every.inputs)                     # the same sequences, another mask
    per_row = b.mask.sum(1)
    assert set(per_row.tolist()) == {0, 1} and 60 < int(per_row.sum()) < 140
    for i, t in b.mask.nonzero().tolist():
        row = b.inputs[i]
        r = 50 - 1 - t                                              # 1-based r: positions r and T − r hold v*
        assert 1 <= r <= 5 and row[r - 1] == row[t]
        assert (row == row[t]).sum() == 2                           # v* nowhere else
        assert b.targets[i, t] == row[r]                            # the token after its first occurrence
    with pytest.raises(ValueError, match="needs hard_prob > 0"):
        induction_heads(5, 50, 6, positions="hard")


def test_mqar_iid_keys_answer_their_latest_value_and_absent_keys_are_not_asked():
    kappa = 6
    b = mqar(300, 40, kappa, 16, keys="iid", seed=2)
    distinct = mqar(300, 40, kappa, 16, seed=2)
    assert int(distinct.mask.sum()) == 300 * kappa
    assert int(b.mask.sum()) < 300 * kappa                              # repeats leave keys unpaired
    for i in range(300):
        x = b.inputs[i].tolist()
        latest = {}
        for k, v in zip(x[0:2 * kappa:2], x[1:2 * kappa:2]):
            latest[k] = v - kappa                                        # value token → value index
        asked = [(t, x[t]) for t in b.mask[i].nonzero()[:, 0].tolist()]
        assert sorted(k for _, k in asked) == sorted(latest)            # every paired key once, no other
        for t, k in asked:
            assert b.targets[i, t] == latest[k]
    with pytest.raises(ValueError, match="keys must be one of distinct, iid"):
        mqar(3, 40, kappa, 16, keys="random")


@pytest.mark.parametrize("keys,noise,length", [(1, 3, 256), (2, 0, 31), (4, 5, 40), (3, 1, 9)])
def test_latest_value_mqar_answers_the_value_after_the_last_occurrence(keys, noise, length):
    from signals.tasks import mqar_latest

    b, query = mqar_latest(60, length, keys, 9, noise, seed=keys + noise)
    body = length - keys
    assert b.inputs.shape == (60, length) and torch.equal(b.mask, query)
    for i in range(60):
        x = b.inputs[i].tolist()
        assert sorted(x[body:]) == list(range(keys))                   # the queries: a permutation of K
        assert all(keys <= t < 9 for t in x[:body] if t >= keys)
        assert x[body - 1] >= keys                                      # no key without its value
        for j in range(body, length):
            seen = [p for p in range(body) if x[p] == x[j]]
            if seen:
                assert query[i, j] and b.targets[i, j] == x[seen[-1] + 1] and x[seen[-1] + 1] >= keys
            else:
                assert not query[i, j] and b.targets[i, j] == IGNORE


def test_latest_value_mqar_options():
    from signals.tasks import mqar_latest

    b, query = mqar_latest(50, 40, 2, 8, 3, key_probs=[1, 0], seed=0)
    assert not (b.inputs[:, :38] == 1).any() and int(query.sum()) == 50      # key 1 never paired, never scored
    ident, q = mqar_latest(5, 40, 2, 8, 3, targets="identity", seed=0)
    assert ident.mask.all() and torch.equal(ident.targets[~q], ident.inputs[~q])
    pairs = (mqar_latest(400, 256, 1, 8, 3, seed=1)[0].inputs[:, :255] == 0).sum(1).float().mean()
    assert 70 < pairs < 75                                              # 255 / (1.5 + 2) = 72.9 blocks
    with pytest.raises(ValueError, match="key_probs must hold 2"):
        mqar_latest(2, 40, 2, 8, 3, key_probs=[1])
