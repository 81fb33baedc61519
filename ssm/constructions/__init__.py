"""Exact weights of the paper's 1-layer constructions (docs/constructions.md, docs/constructions-mqar.md).

- :mod:`.keep_nth`: KEEP n-TH with positional encoding, S6 (Cor. 2, App. A.3);
- :mod:`.mqar`: MQAR with Mamba (Thm. 2), Mamba-2 (Thm. 3), Mamba-S4D (Thm. 4) (App. C.1); :mod:`.mqar_eval`
  scores them (the Λ = 0 engine, accuracy, the smallest JL dimension);
- :mod:`.induction`: INDUCTION HEADS with Mamba-Δ⊤ (Lemma 3, App. C.2).

Each module's ``build(...)`` returns a :class:`ssm.models.OneLayerModel` with the weights set
(``mqar.build`` also returns its sizes).
"""
from . import induction, keep_nth, mqar

__all__ = ["induction", "keep_nth", "mqar"]
