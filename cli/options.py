"""What several commands share: option parsers, the check for options that conflict or do nothing, and the
translation of the library's argument names into the command's option names."""
from __future__ import annotations

import re

import click
from click.core import ParameterSource


def sharpness(ctx, param, value):
    """``--sharpness``: ``auto`` (None: the library's default 64·L²) or a number (validated by the library)."""
    if value in (None, "auto"):
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected 'auto' or a positive number, got {value!r}") from None


def given(ctx: click.Context, name: str) -> bool:
    """Whether the option ``name`` was given on the command line (not left at its default)."""
    return ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None)


def flag(ctx: click.Context, name: str) -> str:
    """The option string of parameter ``name`` (``n_max`` → ``--n-max``)."""
    for p in ctx.command.params:
        if p.name == name:
            return p.opts[0]
    return name


def refuse(ctx: click.Context, names, reason: str) -> None:
    """Refuse, in one line naming both sides, the options of ``names`` that were given although ``reason``
    says they conflict with what else was asked (or would do nothing)."""
    bad = [n for n in names if given(ctx, n)]
    if bad:
        raise click.UsageError(f"{', '.join(flag(ctx, n) for n in bad)} {'has' if len(bad) == 1 else 'have'} "
                               f"no effect {reason}", ctx)


#: where the library's messages name an argument: first in the message, or after "got " (``n_max must be …``,
#: ``… got samples = 4000``), followed by what is said of it
_BEFORE_NAME = r"(^|(?<=got ))"
_AFTER_NAME = r"(?= (?:must|exceeds|applies|apply|is|needs)\b| = )"


def to_flags(message: str, command: click.Command) -> str:
    """Name the command's options where a library message names the Python argument behind them
    (``n_max must be …`` → ``--n-max must be …``, ``… got samples = 4000`` → ``… got --samples = 4000``);
    formulas elsewhere in the message (``d = 2|V|``) are left alone."""
    for p in command.params:
        if isinstance(p, click.Option) and p.name:
            message = re.sub(rf"{_BEFORE_NAME}{re.escape(p.name)}{_AFTER_NAME}", p.opts[0], message)
    return message


class LabGroup(click.Group):
    """The command group: a ``ValueError`` from the library becomes a usage error whose message names the
    invoked command's options (``--n-max``) where the library named its arguments (``n_max``)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ValueError as e:
            sub = self.get_command(ctx, ctx.invoked_subcommand) if ctx.invoked_subcommand else None
            message = str(e) or type(e).__name__
            raise click.ClickException(to_flags(message, sub) if sub is not None else message) from None
