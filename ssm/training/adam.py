"""Adam over stacked weights with a learning rate per member, masked updates, and the cosine schedule on the device.

Every operation is a tensor operation on the weights' device: no ``.item()``, no host synchronisation and no
branch on a value, so a training step that calls :meth:`StackedAdam.step` can be captured in a CUDA graph.

For member r with gradient g, step count t_r (the member's own count of updates) and learning rate η_r
(Kingma & Ba 2015, in the arithmetic order of ``torch.optim.Adam``):

    m ← m + (1 − β₁)(g − m),   v ← β₂ v + (1 − β₂) g²,
    θ ← θ − (η_r / (1 − β₁^{t_r})) · m / (√v / √(1 − β₂^{t_r}) + ε).

A member whose ``active`` flag is off keeps θ, m, v and t_r bit for bit (``torch.where`` selects the old values).
"""
from __future__ import annotations

import math

import torch


def cosine(lr: torch.Tensor, lr_min: torch.Tensor, progress: torch.Tensor, total: int) -> torch.Tensor:
    """η = η_min + (η − η_min)(1 + cos(π·progress/total))/2 per member: lr, lr_min (R,), progress 0-dim."""
    return lr_min + (lr - lr_min) * 0.5 * (1 + torch.cos(progress.to(lr.dtype) * (math.pi / total)))


class StackedAdam:
    """Adam state for stacked ``params`` (name → (R, …)); see the module docstring.

    The moments of all weights live in two flat (R, P) tensors, P the weights of one member, so that one step is
    about twenty element-wise kernels whatever the number of weight tensors (a step is launch-bound at the
    paper's sizes): the gradients and weights are concatenated, updated together, and the weights copied back
    with one multi-tensor copy.

    ``step(params, grads, lr, active)`` updates ``params`` in place; lr (R,) and active (R,) bool are tensors on
    the weights' device. ``state_dict()`` / ``load_state_dict()`` copy the moments (per weight name) and step
    counts.
    """

    def __init__(self, params: dict, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        first = next(iter(params.values()))
        self.names = list(params)
        self.shapes = {k: tuple(p.shape) for k, p in params.items()}
        self.sizes = [p[0].numel() for p in params.values()]
        R, P = first.shape[0], sum(self.sizes)
        self.exp_avg = torch.zeros(R, P, dtype=first.dtype, device=first.device)
        self.exp_avg_sq = torch.zeros(R, P, dtype=first.dtype, device=first.device)
        self.steps = torch.zeros(R, dtype=first.dtype, device=first.device)

    def tensors(self) -> list:
        """Every tensor a step changes."""
        return [self.exp_avg, self.exp_avg_sq, self.steps]

    def _flat(self, tensors: dict) -> torch.Tensor:
        R = self.exp_avg.shape[0]
        return torch.cat([tensors[k].reshape(R, -1) for k in self.names], dim=1)

    @torch.no_grad()
    def step(self, params: dict, grads: dict, lr: torch.Tensor, active: torch.Tensor) -> None:
        steps = self.steps + active.to(self.steps.dtype)
        t = steps.clamp(min=1)
        bias1 = 1 - torch.pow(self.beta1, t)
        bias2_sqrt = torch.sqrt(1 - torch.pow(self.beta2, t))
        step_size = (lr / bias1)[:, None]
        keep = active[:, None]
        g, p, m, v = self._flat(grads), self._flat(params), self.exp_avg, self.exp_avg_sq
        m_new = m.lerp(g, 1 - self.beta1)
        v_new = v * self.beta2 + (1 - self.beta2) * g * g
        denom = v_new.sqrt() / bias2_sqrt[:, None] + self.eps
        p_new = torch.where(keep, p - step_size * (m_new / denom), p)
        m.copy_(torch.where(keep, m_new, m))
        v.copy_(torch.where(keep, v_new, v))
        R = p_new.shape[0]
        parts = [x.view((R,) + self.shapes[k][1:]) for k, x in zip(self.names, p_new.split(self.sizes, dim=1))]
        torch._foreach_copy_([params[k] for k in self.names], parts)
        self.steps.copy_(steps)

    def _split(self, flat: torch.Tensor) -> dict:
        R = flat.shape[0]
        return {k: x.reshape((R,) + self.shapes[k][1:]).clone() for k, x in zip(self.names, flat.split(self.sizes, 1))}

    def state_dict(self) -> dict:
        return {"exp_avg": self._split(self.exp_avg), "exp_avg_sq": self._split(self.exp_avg_sq),
                "steps": self.steps.clone()}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        self.exp_avg.copy_(self._flat({k: v.to(self.exp_avg.device) for k, v in state["exp_avg"].items()}))
        self.exp_avg_sq.copy_(self._flat({k: v.to(self.exp_avg.device) for k, v in state["exp_avg_sq"].items()}))
        self.steps.copy_(state["steps"])
