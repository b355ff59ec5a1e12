"""What every command module shares: the one error a user can fix, the settings `main` read,
the read model a reading command opens, and the option types more than one command uses."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from pizzashop.config import Settings
from pizzashop.readmodel.store import ReadModel, open_readmodel, readmodel_exists


class ShopError(click.ClickException):
    """A problem the user can fix, shown as one clear line."""


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.find_object(Settings)
    assert settings is not None, "main() stores the settings"
    return settings


def existing_readmodel(settings: Settings) -> ReadModel:
    """The shop's read model, for a command that only reads it: never made where there is none."""
    url = settings.readmodel_url
    if not readmodel_exists(url):
        raise ShopError(
            f"no read model at {url.removeprefix('sqlite:///')}: run this from the folder where "
            "the shop runs, or set PIZZASHOP_STATE_DIR or PIZZASHOP_DATABASE_URL"
        )
    return open_readmodel(url)


# An order id is URL-safe base64: one in 64 starts with "-", which is still the id, not an
# option. Read as short options, "-mQh..." would hold -h and show the help: these commands take
# no short option, and --help alone.
ORDER_ID_MAY_START_WITH_A_DASH = {"ignore_unknown_options": True, "help_option_names": ["--help"]}

REPORT_FILE = click.Path(path_type=Path, dir_okay=False)
F = TypeVar("F", bound=Callable[..., Any])


def number_option(name: str, least: float, default: float, help: str) -> Callable[[F], F]:
    """A number with a lower bound and a default that --help shows."""
    return click.option(
        name, type=click.FloatRange(least), default=default, show_default=True, help=help
    )
