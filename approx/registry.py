"""The one table of (basis, strategy): every way the lab chooses N basis functions, and what each one owns.

A :class:`Strategy` entry owns its single-signal builder (read by :func:`approx.fitting.fit`), its batched builder
(read by :func:`approx.rates.rate_sweep`), the ideal dictionary it realises, its theory law (Cor. 1), its plot
label and style, and its help text. The entries live beside their builders, one module per basis family in
:mod:`approx.families`; every module of that package is imported (and so registers its entries) the first time the
table is read. Adding a family is one new module there plus its test.

Builders receive a :class:`Settings`: what a builder may read besides the signal (the resolved sharpness |w| of
the Mamba Heavisides, how Δ reads time, the scan backend).
"""
from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import torch


@dataclass(frozen=True)
class Settings:
    """What the builders of a fit or a sweep share: ``sharpness`` |w| (a float, resolved once by
    :func:`approx.bases.resolve_sharpness`), ``time`` (``"pe"`` or ``"recover"``), ``backend`` (scan backend)."""

    sharpness: float
    time: str = "pe"
    backend: str = "auto"


class FitParts(NamedTuple):
    """What a single-signal builder returns.

    basis : (L, N_ls) the functions the least squares uses; ssm_basis : (L, N_used) the basis functions built
    (differ for mamba/haar: realised atoms vs the Heaviside bases behind them); labels : one per column of
    ``basis``; params : the chosen parameters (jumps, atoms, frequencies, λ …) for the record; ideal : the
    ideal functions these realise, (L, N_ideal), or None — the fit reports their error beside its own.
    """

    basis: torch.Tensor
    ssm_basis: torch.Tensor
    labels: list
    params: dict
    ideal: torch.Tensor | None = None


@dataclass(frozen=True)
class Strategy:
    """One (basis, strategy) of the lab.

    fit : ``fit(x (L,), n, settings) -> FitParts`` or None (the strategy runs only in sweeps).
    sweep : ``sweep(x (T, L), n_max, settings, params) -> l2_sq (T, n_max)``, ``params`` = (breaks (T, m),
        levels (T, m + 1)) of the piecewise trials; or None.
    train : for learned strategies, ``train(m, n_values, trials, settings, options) -> (x, {N: l2_sq (T,)},
        info)``, trained on a grid of ``options["samples"]`` points; the sweep fills only those N.
    floor : optional ``floor(x, settings, params) -> (T,)``, an error below which the strategy cannot go
        (e.g. the Heaviside error at the true jumps for a sharpness |w|); the rate fit stops there.
    theory : ``theory(m) -> dict`` with ``law`` (``"power"``, ``"exp"`` or ``"floor"``), ``value``, ``bound``,
        ``statement``, ``n_lo``, ``stride`` — what Cor. 1 says — or None where the paper states no rate.
    ideal : the (basis, strategy) of the ideal dictionary this strategy realises, if any.
    max_n : ``max_n(L) -> int`` the largest N the strategy can build on a grid of L points (None: no cap).
    power_of_two : needs L a power of two (the dyadic Haar dictionary).
    panel : the panel of the rate plot that shows it (:data:`approx.rate_plots.TITLES`): 0 log-log (power laws),
        1 the ideal Haar dictionary, 2 the Mamba bases (semilog-2, exponential laws).
    """

    basis: str
    name: str
    help: str
    label: str
    fit: Callable | None = None
    sweep: Callable | None = None
    train: Callable | None = None
    floor: Callable | None = None
    theory: Callable | None = None
    ideal: tuple | None = None
    max_n: Callable | None = None
    power_of_two: bool = False
    style: tuple = ("o", "-")
    panel: int = 0
    default_fit: bool = False
    default_rates: bool = False
    reference: bool = False
    meta: dict = field(default_factory=dict)

    @property
    def key(self) -> tuple:
        return (self.basis, self.name)

    def check_n(self, n: int, L: int, what: str = "n") -> int:
        """Refuse, before any work, an N this strategy cannot build on a grid of L points."""
        if self.max_n is not None and n > self.max_n(L):
            raise ValueError(f"{what} = {n} exceeds the {self.max_n(L)} {self.basis}/{self.name} functions that "
                             f"a grid of L = {L} points holds")
        return n


_TABLE: dict = {}
_LOADED = False


def register(entry: Strategy, *, replace: bool = False) -> Strategy:
    """Add ``entry`` to the table (``replace=True`` to overwrite an entry of the same key)."""
    if entry.key in _TABLE and not replace:
        raise ValueError(f"strategy {entry.basis}/{entry.name} is already registered")
    _TABLE[entry.key] = entry
    return entry


def unregister(basis: str, name: str) -> None:
    """Remove an entry (tests that register a toy family clean up with this)."""
    _TABLE.pop((basis, name), None)


def _load() -> dict:
    global _LOADED
    if not _LOADED:
        _LOADED = True
        from . import families
        names = sorted(m.name for m in pkgutil.iter_modules(families.__path__))
        for name in [n for n in families.FIRST if n in names] + [n for n in names if n not in families.FIRST]:
            importlib.import_module(f"{families.__name__}.{name}")
    return _TABLE


def entries() -> list:
    """Every registered strategy, in registration order."""
    return list(_load().values())


def bases() -> tuple:
    """The basis families, in registration order."""
    return tuple(dict.fromkeys(e.basis for e in entries()))


def strategies(basis: str, *, fit: bool | None = None) -> tuple:
    """The strategy names of ``basis`` (``fit=True``: only those with a single-signal builder)."""
    return tuple(e.name for e in entries() if e.basis == basis and (fit is None or (e.fit is not None) == fit))


def get(basis: str, strategy: str | None = None, *, for_fit: bool = False) -> Strategy:
    """The entry of (basis, strategy); ``strategy=None`` gives the basis's default for ``fit``.

    Raises ValueError naming the basis or strategy, and the basis it belongs to when it is another's."""
    table = _load()
    if basis not in bases():
        raise ValueError(f"unknown basis {basis!r}; choose one of {', '.join(bases())}")
    if strategy is None:
        defaults = [e for e in table.values() if e.basis == basis and e.default_fit]
        return defaults[0]
    entry = table.get((basis, strategy))
    if entry is None or (for_fit and entry.fit is None):
        owners = [e.basis for e in table.values() if e.name == strategy and (not for_fit or e.fit is not None)]
        hint = f" (it belongs to basis {', '.join(owners)})" if owners else ""
        names = strategies(basis, fit=True if for_fit else None)
        raise ValueError(f"strategy {strategy!r} does not belong to basis {basis!r}{hint}; "
                         f"the strategies of {basis} are {', '.join(names)}")
    return entry


def help_text(*, fit: bool) -> str:
    """``basis: strategy | strategy; …`` for the CLI's help (only fit builders with ``fit=True``)."""
    parts = []
    for b in bases():
        names = strategies(b, fit=True if fit else None)
        if names:
            parts.append(f"{b}: {' | '.join(names)}")
    return "; ".join(parts)
