"""Entry point of the ``approx`` command and its error policy (docs/design.md §4).

Exit codes: 0 success; 2 bad input or usage — one line ``approx: error: …`` naming the bad value and the option,
no traceback; 1 an internal error (the traceback only with ``APPROX_DEBUG=1``). The library raises ``ValueError``
naming its Python arguments; :class:`LabGroup` names the command's options instead.
"""
from __future__ import annotations

import os
import sys
import traceback

import click

from . import construct, fit
from . import rates
from . import sensitivity
from . import train, reproduce
from . import mechanism
from .options import LabGroup


@click.group(cls=LabGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ssm-approx-lab")
def approx():
    """A lab for function approximation and signal processing with state-space models.

    Fit S4D (exponential/Fourier) and Mamba (Heaviside/Haar) bases to signals, measure L² errors and their
    rates, build the paper's analytic constructions and run sensitivity experiments
    (Huang et al., Understanding Input Selectivity in Mamba, ICML 2025).
    """


approx.add_command(fit.fit)
approx.add_command(construct.construct)
approx.add_command(rates.rates)
approx.add_command(sensitivity.sensitivity)
approx.add_command(train.train)
approx.add_command(mechanism.mechanism)
approx.add_command(reproduce.reproduce)


def main(argv=None):
    """Run the command line; map errors to the exit codes of docs/design.md §4."""
    try:
        approx.main(args=argv, prog_name="approx", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.Abort:
        click.echo("approx: interrupted (what the store holds is kept: rates, train and reproduce resume from it "
                   "when run again)", err=True)
        sys.exit(130)
    except click.ClickException as e:
        click.echo("approx: error: " + " ".join(e.format_message().split()), err=True)
        sys.exit(2)
    except (ValueError, FileNotFoundError, IsADirectoryError) as e:
        msg = str(e) or type(e).__name__
        click.echo(f"approx: error: {msg}".replace("\n", " "), err=True)
        sys.exit(2)
    except Exception as e:  # noqa: BLE001 - the last line of defence of the CLI
        if os.environ.get("APPROX_DEBUG"):
            traceback.print_exc()
        click.echo(f"approx: internal error: {type(e).__name__}: {e} (set APPROX_DEBUG=1 for the traceback)",
                   err=True)
        sys.exit(1)
    sys.exit(0)


if __name__ == "__main__":
    main()
