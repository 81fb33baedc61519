"""Sensitivity of SSM states to past inputs: Lemma 1, Lemma 2 and the softmax-attention bound (Sec. 4.2, App. B).

The object of study is the Jacobian of the state at time t with respect to the input at time j,

    J[t, j, d, n, k] = ∂h_t[d, n] / ∂x_j[k]          (t, j = 1..L;  J = 0 for t < j)

of a diagonal selective SSM whose parameters are token-wise functions of its input (the setting of Lemma 1;
:class:`ssm.layers.TokenSSM`). One module per idea:

- :mod:`.jacobians` — J by autograd through the scan engine, and by the closed form of App. B (eqs. 35-38);
- :mod:`.lemma1` — the decay rate λ·mean(Δ) of eq. (37), fitted state by state;
- :mod:`.lemma2` — Lemma 2's retention bound (eqs. 12-13) and the selective forgetting of Fig. 1 (right);
- :mod:`.attention` — softmax attention and its 1/t bound (eqs. 44-45);
- :mod:`.runner` — :func:`run_sensitivity`, the one entry point of ``approx sensitivity``.

Every experiment returns metrics (JSON-ready numbers) and ``series``: the arrays behind its plot, no labels.
Conventions: float64 (complex128 states for complex A). Arrays index time from 0 (t = 0..L−1); results that speak
of the paper's j (1-based) say so.
"""
from ..layers.token import TokenSSM, token_ssm
from .attention import (Attention, attention_experiment, attention_jacobian_autograd, attention_jacobian_closed_form,
                        attention_memory)
from .jacobians import (MAX_JACOBIAN_ENTRIES, closed_form_factors, jacobian_autograd, jacobian_closed_form,
                        max_relative_error, random_input, retention)
from .lemma1 import decay_experiment, fit_log_linear
from .lemma2 import forgetting_experiment, gated_input, gated_layer, lemma2_experiment
from .runner import EXPERIMENTS, LAYERS, build_layer, load_weights, run_sensitivity

__all__ = ["Attention", "EXPERIMENTS", "LAYERS", "MAX_JACOBIAN_ENTRIES", "TokenSSM", "attention_experiment",
           "attention_jacobian_autograd", "attention_jacobian_closed_form", "attention_memory", "build_layer",
           "closed_form_factors", "decay_experiment", "fit_log_linear", "forgetting_experiment", "gated_input",
           "gated_layer", "jacobian_autograd", "jacobian_closed_form", "lemma2_experiment", "load_weights",
           "max_relative_error", "random_input", "retention", "run_sensitivity", "token_ssm"]
