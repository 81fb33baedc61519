"""The ensemble trainer: smoke runs of every model, Adam, stacking against single runs, early stop and masking."""
import math

import pytest
import torch

from signals.tasks import make_task
from ssm.models import build, make_model_config
from ssm.training.adam import StackedAdam, cosine
from ssm.training.data import GroupData
from ssm.training.ensemble import EnsembleTrainer
from ssm.training.recipe import PAPER, Recipe, deviation

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = Recipe(epochs=2, batch_size=4, train_size=24, val_size=8, test_size=12)


def trainer(model="mamba", task=None, seeds=(0, 1), recipe=TINY, lrs=None, tasks=None, dtype=torch.float32,
            **fields):
    task = task or make_task("keep-nth", length=6, nth=2, vocab=7)
    tasks = tasks or [task] * len(seeds)
    data = GroupData(tasks, recipe)
    m = build(make_model_config(model, **fields), vocab_size=task.vocab_size, num_classes=task.num_classes,
              length=data.length)
    return EnsembleTrainer(m, data, recipe, list(seeds), lrs=lrs, dtype=dtype)


SMOKE = [("mamba", {"d": 4, "N": 2, "pe": True}, None), ("mamba", {"d": 4, "N": 2}, None),
         ("s4d", {"d": 4, "N": 2, "pe": True}, None), ("s4d", {"d": 3, "N": 1}, None), ("transformer", {"d": 4}, None),
         ("mamba", {"d": 4, "N": 2}, ("mqar", {"length": 9, "kappa": 2, "vocab": 5})),
         ("transformer", {"d": 4}, ("induction", {"length": 10, "vocab": 3}))]


@pytest.mark.parametrize("model,fields,task", SMOKE)
def test_every_model_trains_through_the_trainer(model, fields, task):
    t = trainer(model, make_task(task[0], **task[1]) if task else None, **fields)
    before = {k: v.detach().clone() for k, v in t.params.items()}
    t.train()
    assert t.epoch == 2 and len(t.history["train_loss"]) == 2
    assert all(math.isfinite(x) for row in t.history["train_loss"] for x in row)
    assert any(not torch.equal(before[k], v) for k, v in t.params.items())
    loss, acc = t.evaluate("test")
    assert loss.shape == acc.shape == (2,) and bool(((acc >= 0) & (acc <= 1)).all())
    assert t.adam.steps.tolist() == [12.0, 12.0]


def test_stacked_adam_equals_torch_adam_with_a_cosine_learning_rate():
    """Two weights of different shapes (the flat moments split back in order), a state_dict round trip halfway."""
    torch.manual_seed(0)
    shapes = {"w": (4, 5), "b": (2,)}
    stacked = {k: torch.randn((3,) + s, dtype=torch.float64) for k, s in shapes.items()}
    adam = StackedAdam(stacked, beta1=0.8, beta2=0.99, eps=1e-7)
    singles = [{k: torch.nn.Parameter(v[r].clone()) for k, v in stacked.items()} for r in range(3)]
    lr0 = torch.tensor([0.03, 0.01, 0.1], dtype=torch.float64)
    opts = [torch.optim.Adam(list(p.values()), lr=float(lr0[r]), betas=(0.8, 0.99), eps=1e-7)
            for r, p in enumerate(singles)]
    active = torch.ones(3, dtype=torch.bool)
    for k in range(6):
        grads = {k_: torch.randn((3,) + s, dtype=torch.float64) for k_, s in shapes.items()}
        lr = cosine(lr0, torch.full((3,), 1e-4, dtype=torch.float64), torch.tensor(k), 6)
        adam.step(stacked, grads, lr, active)
        if k == 2:
            state = adam.state_dict()
            adam = StackedAdam(stacked, beta1=0.8, beta2=0.99, eps=1e-7)
            adam.load_state_dict(state)
        for r, (p, opt) in enumerate(zip(singles, opts)):
            opt.param_groups[0]["lr"] = 1e-4 + (float(lr0[r]) - 1e-4) * 0.5 * (1 + math.cos(math.pi * k / 6))
            for name, w in p.items():
                w.grad = grads[name][r].clone()
            opt.step()
    for r, p in enumerate(singles):
        for name, w in p.items():
            torch.testing.assert_close(stacked[name][r], w.detach(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("model,fields", [("mamba", {"d": 4, "N": 2, "pe": True}), ("s4d", {"d": 4, "N": 3}),
                                          ("transformer", {"d": 4, "heads": 2})])
def test_an_ensemble_equals_single_member_runs_of_the_same_seeds(model, fields):
    """R members trained together for two epochs (float64) = R runs of one member each: weights and curves."""
    seeds, lrs = (3, 4, 5), (0.03, 0.01, 0.05)
    together = trainer(model, seeds=seeds, lrs=lrs, dtype=torch.float64, **fields)
    together.train()
    for i, (s, lr) in enumerate(zip(seeds, lrs)):
        alone = trainer(model, seeds=(s,), lrs=(lr,), dtype=torch.float64, **fields)
        alone.train()
        for k, v in together.params.items():
            torch.testing.assert_close(v[i], alone.params[k][0], rtol=1e-10, atol=1e-12)
        for k, rows in together.history.items():
            assert [r[i] for r in rows] == pytest.approx([r[0] for r in alone.history[k]], rel=1e-9)


def test_members_of_different_lengths_train_as_if_alone():
    """A group mixes T = 4 and T = 7 members (the shorter padded): each equals its unpadded single run."""
    short, long = make_task("keep-nth", length=4, nth=2, vocab=7), make_task("keep-nth", length=7, nth=2, vocab=7)
    mixed = trainer("mamba", seeds=(1, 2), tasks=[short, long], dtype=torch.float64, d=4, N=2, pe=True)
    mixed.train()
    for i, task in enumerate((short, long)):
        alone = trainer("mamba", task=task, seeds=((1, 2)[i],), dtype=torch.float64, d=4, N=2, pe=True)
        alone.train()
        for k, v in mixed.params.items():
            torch.testing.assert_close(v[i], alone.params[k][0], rtol=1e-10, atol=1e-12)


def test_a_stopped_member_stays_bit_for_bit_unchanged():
    t = trainer("mamba", seeds=(0, 1, 2), d=4, N=2)
    t._start_epoch()
    t.step()
    with torch.no_grad():
        t.active.copy_(torch.tensor([True, False, True]))
    frozen = {k: v[1].detach().clone() for k, v in t.params.items()}
    moments = (t.adam.exp_avg[1].clone(), t.adam.exp_avg_sq[1].clone())
    moving = {k: v[0].detach().clone() for k, v in t.params.items()}
    for _ in range(3):
        t.step()
    for k, v in t.params.items():
        assert torch.equal(v[1], frozen[k])
    assert torch.equal(t.adam.exp_avg[1], moments[0]) and torch.equal(t.adam.exp_avg_sq[1], moments[1])
    assert any(not torch.equal(v[0], moving[k]) for k, v in t.params.items())
    assert t.adam.steps.tolist() == [4.0, 1.0, 4.0]


def test_early_stop_records_the_epoch_and_ends_when_every_member_stopped():
    t = trainer("mamba", seeds=(0, 1), recipe=TINY.replace(epochs=5, stop_loss=100.0), d=4, N=2)
    t.train()
    assert t.stop_epoch.tolist() == [1, 1] and t.epochs_trained() == [1, 1]
    assert t.epoch == 1 and t.adam.steps.tolist() == [6.0, 6.0]      # the group ended after one epoch


def test_early_stop_of_one_member_masks_it_and_nans_its_later_curves():
    t = trainer("mamba", seeds=(0, 1), recipe=TINY.replace(epochs=3), d=4, N=2)
    t._start_epoch()
    for _ in range(TINY.steps_per_epoch):
        t.step()
    t.step_in_epoch = TINY.steps_per_epoch
    val, _ = t.evaluate("val")
    t.recipe = t.recipe.replace(stop_loss=float((val[0] + val[1]) / 2))    # between the two members
    t.train()
    first = int(torch.argmin(val))
    assert t.epochs_trained()[first] == 1 and t.epochs_trained()[1 - first] >= 2
    assert math.isnan(t.history["train_loss"][1][first]) and not math.isnan(t.history["train_loss"][1][1 - first])


def test_per_epoch_learning_rate_equals_the_per_step_one_when_an_epoch_is_one_step():
    """The per-epoch cosine is computed at each epoch's start, the per-step one inside the step: with one step per
    epoch both schedules give the same learning rates, so the runs end bit for bit alike."""
    recipe = TINY.replace(epochs=5, train_size=TINY.batch_size, stop_loss=0.0)
    runs = [trainer("mamba", seeds=(0, 1), lrs=(0.05, 0.02), recipe=recipe.replace(schedule=s), dtype=torch.float64,
                    d=4, N=2) for s in ("epoch", "step")]
    for t in runs:
        t.train()
    for k in runs[0].params:
        assert torch.equal(runs[0].params[k], runs[1].params[k]), k
    expected = 1e-6 + (0.05 - 1e-6) * 0.5 * (1 + math.cos(math.pi * 4 / 5))
    assert math.isclose(float(runs[0].epoch_lr[0]), expected, rel_tol=1e-12)


def test_plateau_stop_ends_members_without_a_gain_and_records_them_apart_from_the_early_stop():
    t = trainer("mamba", seeds=(0, 1), recipe=TINY.replace(epochs=6, patience=1, min_gain=2.0), d=4, N=2)
    t.train()                                  # a gain of 2 in accuracy is impossible: both stop after epoch 2
    assert t.plateau_epoch.tolist() == [2, 2] and t.stop_epoch.tolist() == [0, 0]
    assert t.epochs_trained() == [2, 2] and t.epoch == 2


def test_plateau_rule_compares_the_last_epochs_with_the_best_before_them():
    t = trainer("mamba", seeds=(0, 1), recipe=TINY.replace(patience=2, min_gain=0.01), d=4, N=2)
    t.history["val_acc"] = [[0.1, 0.5], [0.1, 0.6]]
    assert t._plateaued() == [False, False]                 # not more than `patience` epochs yet
    t.history["val_acc"].append([0.105, 0.7])
    assert t._plateaued() == [True, False]                  # 0.105 < 0.1 + 0.01; 0.7 ≥ 0.5 + 0.01
    t.history["val_acc"].append([math.nan, 0.69])
    assert t._plateaued() == [False, False]                 # a member already stopped is left alone


def test_the_plateau_knobs_leave_the_keys_of_runs_without_them_unchanged():
    assert "patience" not in PAPER.to_dict() and "min_gain" not in PAPER.to_dict()
    on = PAPER.replace(patience=10)
    assert Recipe(**on.to_dict()) == on and on.to_dict()["min_gain"] == 0.01
    assert deviation(on) == ("recipe differs from App. D.1: stop after 10 epochs without a validation-accuracy gain "
                             "of 0.01 (paper: no such stop)")


def test_recipe_deviation_line():
    assert deviation(PAPER) == ""
    line = deviation(PAPER.replace(epochs=40, train_size=10_000))
    assert line == "recipe differs from App. D.1: epochs 40 (paper 600), train size 10000 (paper 100000)"
    assert deviation(PAPER.replace(schedule="step")) == ""                    # a choice the paper leaves open
    with pytest.raises(ValueError, match="batch_size must not exceed train_size=10"):
        Recipe(train_size=10, batch_size=16)
    with pytest.raises(ValueError, match="lr_min must not exceed lr=0.001"):
        Recipe(lr=1e-3, lr_min=1e-2)


def test_the_cosine_reaches_its_ends():
    lr = cosine(torch.tensor([0.03]), torch.tensor([1e-6]), torch.tensor(0), 600)
    assert float(lr) == pytest.approx(0.03)
    lr = cosine(torch.tensor([0.03]), torch.tensor([1e-6]), torch.tensor(600), 600)
    assert float(lr) == pytest.approx(1e-6, abs=1e-12)


def test_batch_order_is_a_fresh_permutation_per_epoch_and_member():
    t = trainer("mamba", seeds=(0, 1), d=4, N=2)
    t._start_epoch()
    first = t.order.clone()
    assert all(sorted(r) == list(range(24)) for r in first.tolist())
    assert not torch.equal(first[0], first[1])
    t.epoch = 1
    t._start_epoch()
    assert not torch.equal(first, t.order)


def test_data_larger_than_the_free_memory_is_refused_before_it_is_drawn(monkeypatch):
    import ssm.training.data as data
    monkeypatch.setattr(data, "free_memory", lambda device: 1000)
    with pytest.raises(ValueError, match=r"the data sets of this group need .* GiB are free on cpu"):
        GroupData([make_task("keep-nth", length=6, nth=2, vocab=7)], TINY)


def test_a_disagreement_is_explained_by_the_sequences_each_recipe_saw():
    from ssm.training import paper
    from ssm.training.reproduce import BUDGET, note

    cell = {"row": "MAMBA (+PE)", "T": 20, "paper": paper.Cell(1.0, 0.0, 37, 2.2)}   # 37 epochs < 50, yet 3.7e6
    text = note("table-a1", cell, {"accuracy": 0.48}, BUDGET)
    assert "37 epochs of 100000 sequences (3.7e+06 seen)" in text and "50 of 10000 (5.0e+05)" in text
    few = {"row": "MAMBA (+PE)", "T": 20, "paper": paper.Cell(1.0, 0.0, 4, 2.2)}      # 4·10⁵ < 5·10⁵
    assert note("table-a1", few, {"accuracy": 0.48}, BUDGET) == "recipe differs from App. D.1"
