"""Reading a configuration file of ours: every way it can be unreadable, said plainly."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from social_pipelines.errors import ConfigError


def read_toml(path: Path, *, what: str, setting: str) -> dict[str, Any]:
    """The file's top-level table. `what` names the file in errors ("accounts file"),
    `setting` the variable that points at it."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"{what} {path} is not UTF-8 text (byte {error.start}); save it as UTF-8"
        ) from None
    except FileNotFoundError:
        raise ConfigError(f"{what} {path} does not exist ({setting})") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{what} {path} is not valid TOML: {error}") from None
    return raw


def refuse_unknown_keys(path: Path, raw: dict[str, Any], *, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(raw) - set(allowed))
    if unknown:
        raise ConfigError(
            f"{path}: unknown top-level key(s) {unknown}; allowed: {', '.join(allowed)}"
        )


def fields(error: ValidationError) -> tuple[str, ...]:
    """The dotted names of the fields a ValidationError is about, each once."""
    return tuple(dict.fromkeys(_where(item["loc"]) for item in error.errors()))


def explain(error: ValidationError) -> str:
    """A ValidationError as `field: problem (got value)`, joined by `; `; never a nested
    table's contents (they may be long, or hold what another field refers to)."""
    return "; ".join(
        f"{_where(item['loc']) or 'entry'}: {item['msg']}"
        + (f" (got {item['input']!r})" if not isinstance(item.get("input"), dict) else "")
        for item in error.errors()
    )


def _where(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc)
