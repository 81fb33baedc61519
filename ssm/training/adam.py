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

    ``step(params, grads, lr, active)`` updates ``params`` in place; lr (R,) and active (R,) bool are tensors on
    the weights' device. ``state_dict()`` / ``load_state_dict()`` copy the moments and step counts.
    """

    def __init__(self, params: dict, *, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8):
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.exp_avg = {k: torch.zeros_like(p) for k, p in params.items()}
        self.exp_avg_sq = {k: torch.zeros_like(p) for k, p in params.items()}
        first = next(iter(params.values()))
        self.steps = torch.zeros(first.shape[0], dtype=first.dtype, device=first.device)

    @torch.no_grad()
    def step(self, params: dict, grads: dict, lr: torch.Tensor, active: torch.Tensor) -> None:
        steps = self.steps + active.to(self.steps.dtype)
        t = steps.clamp(min=1)
        bias1 = 1 - torch.pow(self.beta1, t)
        bias2_sqrt = torch.sqrt(1 - torch.pow(self.beta2, t))
        step_size = lr / bias1
        for k, p in params.items():
            g, m, v = grads[k], self.exp_avg[k], self.exp_avg_sq[k]
            view = (-1,) + (1,) * (p.dim() - 1)
            keep = active.reshape(view)
            m_new = m.lerp(g, 1 - self.beta1)
            v_new = v * self.beta2 + (1 - self.beta2) * g * g
            denom = v_new.sqrt() / bias2_sqrt.reshape(view) + self.eps
            p_new = p - step_size.reshape(view) * (m_new / denom)
            p.copy_(torch.where(keep, p_new, p))
            m.copy_(torch.where(keep, m_new, m))
            v.copy_(torch.where(keep, v_new, v))
        self.steps.copy_(steps)

    def state_dict(self) -> dict:
        return {"exp_avg": {k: v.clone() for k, v in self.exp_avg.items()},
                "exp_avg_sq": {k: v.clone() for k, v in self.exp_avg_sq.items()}, "steps": self.steps.clone()}

    @torch.no_grad()
    def load_state_dict(self, state: dict) -> None:
        for k in self.exp_avg:
            self.exp_avg[k].copy_(state["exp_avg"][k])
            self.exp_avg_sq[k].copy_(state["exp_avg_sq"][k])
        self.steps.copy_(state["steps"])
