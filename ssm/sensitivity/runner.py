"""One entry point for the sensitivity experiments: the layer, the experiment and its sizes by name.

:func:`run_sensitivity` builds a random layer (:func:`build_layer`, or loads trained weights with
:func:`load_weights`), draws the input and runs :func:`ssm.sensitivity.decay_experiment` (Lemma 1),
:func:`~ssm.sensitivity.lemma2_experiment`, :func:`~ssm.sensitivity.forgetting_experiment` or
:func:`~ssm.sensitivity.attention_experiment`, returning JSON-ready metrics and the arrays behind the plot.
"""
from __future__ import annotations

import math
import os

import torch

from signals.checks import check_int

from ..layers.mixers import Mamba2Mixer, MambaDeltaTMixer, S4DMixer, S6Mixer
from .attention import attention_experiment
from .jacobians import random_input
from .lemma1 import decay_experiment
from .lemma2 import forgetting_experiment, lemma2_experiment

LAYERS = ("s4d", "s6", "mamba2", "mamba_dt", "attention")
EXPERIMENTS = ("decay", "lemma2", "forgetting")
_ALLOWED = {"decay": LAYERS, "lemma2": ("s6", "mamba2"), "forgetting": ("s6",)}


def build_layer(layer: str, d: int, n: int, seed: int):
    """A mixer with random weights: the layer's own initialisation under ``torch.manual_seed(seed)``.

    ``s4d``: :class:`ssm.layers.S4DMixer` (complex, S4D-Lin Im Λ = πn) with Re Λ drawn from U(−1, −0.02) so that
    the states decay at different rates; ``s6``: :class:`ssm.layers.S6Mixer`; ``mamba2``:
    :class:`ssm.layers.Mamba2Mixer` with kernel-1 convolutions (token-wise, Lemma 1's setting); ``mamba_dt``:
    :class:`ssm.layers.MambaDeltaTMixer`.
    """
    check_int("d", d)
    check_int("n", n)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        if layer == "s4d":
            mixer = S4DMixer(d, n)
            with torch.no_grad():
                mixer.A.real.copy_(-(0.02 + 0.98 * torch.rand(d, n)))
        elif layer == "s6":
            mixer = S6Mixer(d, n)
        elif layer == "mamba2":
            mixer = Mamba2Mixer(d, n, conv_kernel=1)
        elif layer == "mamba_dt":
            mixer = MambaDeltaTMixer(d, n)
        else:
            raise ValueError(f"layer must be one of {LAYERS[:-1]} here, got {layer!r}")
    return mixer


def load_weights(mixer, path) -> None:
    """Load a ``.pt`` state dict into ``mixer`` (in place). Keys prefixed ``mixer.`` (a saved
    :class:`ssm.models.OneLayerModel`) are taken from the model's mixer. Raises ValueError with one line naming the
    file for a missing or unreadable file, or weights whose names or shapes do not fit the layer."""
    path = str(path)
    if not os.path.exists(path):
        raise ValueError(f"weights file {path!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"weights file {path!r} is a directory")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/zip failure means a corrupt file
        raise ValueError(f"weights file {path!r} is not a readable torch state dict ({type(e).__name__})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"weights file {path!r} does not hold a state dict of tensors")
    if any(k.startswith("mixer.") for k in state):
        state = {k[len("mixer."):]: v for k, v in state.items() if k.startswith("mixer.")}
    try:
        mixer.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines()[1:] if ln.strip()]
        detail = "; ".join(lines)
        detail = detail if len(detail) <= 240 else detail[:237] + "..."
        raise ValueError(f"weights file {path!r} does not fit a {type(mixer).__name__}(d={mixer.d}, N={mixer.N}): "
                         f"{detail}") from None


def run_sensitivity(*, layer: str = "s6", experiment: str = "decay", length: int = 64, d: int = 2, n: int = 4,
                    j: int | None = None, seed: int = 0, weights=None, device="cpu", backend: str = "auto",
                    scale: float = 0.3, progress: bool = False) -> dict:
    """Run one sensitivity experiment and return ``{"config", "metrics", "components", "series"}``.

    - ``decay`` (Lemma 1, any layer): :func:`decay_experiment` on a random (or ``weights``-loaded) mixer and a
      N(0, 1) input of length T, sensitivity to x_j (default j = 1); for ``attention``,
      :func:`attention_experiment` (eqs. 44-45).
    - ``lemma2`` (s6, mamba2): :func:`lemma2_experiment`, j defaults to max(1, T // 4).
    - ``forgetting`` (s6): :func:`forgetting_experiment` on the KEEP n-TH construction, with n = ``j``
      (default min(5, T)).

    ``d``, ``n`` size the random layers (and ``d`` the attention); ``device`` is a torch device (``backend="auto"``
    runs the Triton scan on CUDA); ``progress`` shows a bar over the autograd passes on a terminal. ``series``
    holds the experiment's arrays (:mod:`approx.plots_sensitivity` draws them). Raises ValueError naming the bad
    argument.
    """
    if layer not in LAYERS:
        raise ValueError(f"layer must be one of {', '.join(LAYERS)}, got {layer!r}")
    if experiment not in EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(EXPERIMENTS)}, got {experiment!r}")
    if layer not in _ALLOWED[experiment]:
        raise ValueError(f"experiment {experiment!r} runs on layer {' or '.join(_ALLOWED[experiment])}, "
                         f"got {layer!r}")
    check_int("length", length)
    if weights is not None and (experiment != "decay" or layer == "attention"):
        raise ValueError(f"weights apply to the decay experiment of an SSM layer, not to "
                         f"{experiment!r} on {layer!r} (its weights are constructed)")
    if j is None:
        j = {"decay": 1, "lemma2": max(1, length // 4), "forgetting": min(5, length)}[experiment]
    check_int("n" if experiment == "forgetting" else "j", j, 1, length)
    device = torch.device(device)
    config = {"layer": layer, "experiment": experiment, "length": length, "j": j, "seed": seed,
              "weights": None if weights is None else str(weights), "backend": backend, "device": device.type}
    components = []
    if experiment == "decay" and layer == "attention":
        if not scale > 0:
            raise ValueError(f"scale must be > 0, got {scale!r}")
        config.update(d=check_int("d", d), scale=scale)
        result = attention_experiment(length=length, d=d, j=j, seed=seed, scale=scale, device=device,
                                      progress=progress)
    elif experiment == "decay":
        mixer = build_layer(layer, d, n, seed)
        if weights is not None:
            load_weights(mixer, weights)
        config.update(d=d, n=n)
        x = random_input(length, d, seed + 1, device)
        result = decay_experiment(mixer, x, j=j, backend=backend, progress=progress)
        components = result["components"]
    elif experiment == "lemma2":
        config.update(lam=1.0, delta_on=0.1, delta_off=1e-4)
        result = lemma2_experiment(layer, length=length, j=j, seed=seed, backend=backend, device=device,
                                   progress=progress)
    else:
        config.update(vocab=16, n=j)
        result = forgetting_experiment(length=length, n=j, seed=seed, backend=backend, device=device,
                                       progress=progress)

    def finite(v):      # NaN (nothing to fit, e.g. T = 1) → None, so that records stay valid JSON
        return None if isinstance(v, float) and not math.isfinite(v) else v

    metrics = {k: finite(v) for k, v in result["metrics"].items()}
    components = [{k: finite(v) for k, v in c.items()} for c in components]
    return {"config": config, "metrics": metrics, "components": components, "series": result["series"]}
