"""What the commands share on the way in: option types, settings from flags, and back."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from semsearch.index.errors import SemsearchError
from semsearch.search.settings import Settings

__all__ = [
    "IndexOption",
    "ModelOption",
    "index_command_line",
    "index_flags",
    "optional_ray_address",
    "settings_from",
    "whole_numbers",
]

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="index folder [env SEMSEARCH_INDEX_DIR]")
]
ModelOption = Annotated[
    str | None,
    typer.Option("--model", help="sentence-transformers name or folder [env SEMSEARCH_MODEL]"),
]


def settings_from(**overrides: Any) -> Settings:
    """The SEMSEARCH_* settings, with each flag that was given (not None) in their place.

    Raises:
        SemsearchError: a SEMSEARCH_* variable is invalid.
    """
    try:
        settings = Settings()
    except ValidationError as error:  # a bad SEMSEARCH_* variable
        raise SemsearchError(f"bad configuration: {settings_problem(error)}") from None
    changes = {key: value for key, value in overrides.items() if value is not None}
    return settings.model_copy(update=changes)


def settings_problem(error: ValidationError) -> str:
    """What is wrong with the settings, one line a problem, without the values given (one may
    be a secret)."""
    return "; ".join(
        f"SEMSEARCH_{'_'.join(str(part) for part in e['loc']).upper()}: "
        f"{e['msg'].removeprefix('Value error, ')}"
        for e in error.errors()
    )


def index_flags(settings: Settings) -> list[str]:
    """`--index DIR` when the settings' index folder is not the default (quoted for a shell)."""
    if settings.index_dir == Settings.model_fields["index_dir"].default:
        return []
    return ["--index", shlex.quote(str(settings.index_dir))]


def index_command_line(settings: Settings) -> str:
    """The exact `semsearch index` command that builds the index these settings point at."""
    words = ["semsearch", "index"]
    if settings.index_dir != Settings.model_fields["index_dir"].default:
        words += ["--index", str(settings.index_dir)]
    if settings.seeds_dir != Settings.model_fields["seeds_dir"].default:
        words += ["--seeds", str(settings.seeds_dir)]
    return shlex.join(words)


def whole_numbers(text: str, option: str) -> list[int]:
    """Comma-separated whole numbers (blanks between commas are skipped).

    Raises:
        SemsearchError: one is not a whole number (named with its `option`).
    """
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SemsearchError(f"{option} takes whole numbers, got {text!r}") from None


def optional_ray_address(args: list[str]) -> list[str]:
    """`--ray` alone means a local Ray: give it the value "local" (click needs a value)."""
    fixed = []
    for position, arg in enumerate(args):
        fixed.append(arg)
        if arg == "--ray" and (position + 1 == len(args) or args[position + 1].startswith("-")):
            fixed.append("local")
    return fixed
