"""Option parsers shared by several commands."""
import click


def sharpness(value: str):
    """``--sharpness``: ``auto`` (None: the library's default 64·L²) or a number (validated by the library)."""
    if value == "auto":
        return None
    try:
        return float(value)
    except ValueError:
        raise click.BadParameter(f"expected 'auto' or a positive number, got {value!r}") from None
