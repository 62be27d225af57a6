"""The content calendar (`SOCIAL_CALENDAR_DIR`): posts written as YAML or JSON files.

The calendar is a folder. Every `.yaml`, `.yml` or `.json` file in it, subfolders included,
holds a list of posts; other files (the images, a README) are ignored, and so are hidden
files and folders (a name starting with `.`: editor backups, `.git`). Files are read in the
order of their path inside the folder. A file is a list of entries, or a mapping with the
one key `posts` holding that list; an empty YAML file holds none. One entry:

```yaml
- id: launch-2026                  # letters, digits, _ and -; unique in the whole calendar
  at: 2026-12-24T09:00:00+01:00    # ISO 8601 with a UTC offset (or Z), or a local time
                                   # ("2026-12-24 09:00") read in `timezone`, or in
                                   # SOCIAL_DEFAULT_TIMEZONE when the entry has none
  timezone: Europe/Berlin          # optional: the IANA zone of a local `at`
  to: [brand, brand_eu]            # accounts of the accounts file; also "brand, brand_eu"
  text: "We launched!"             # may be "" when the post has a link or an image
  link: https://example.com/launch # optional http:// or https:// URL, added after the text
  images:                          # optional, at most 4
    - path: images/launch.jpg      # a file, relative to this calendar file's folder
      alt: "The new product on a desk"
    - url: https://example.com/b.png   # or an https:// URL, fetched when the post goes out
      alt: "The team"
  text_for:                        # optional: the text one target gets instead of `text`
    brand_eu: "Wir sind live!"
```

An `at` without an offset is refused unless a zone applies, and a local time that does not
exist on the clock (when daylight saving starts) or that happens twice (when it ends) is
refused with both readings spelled out: give the offset then (`when.py`).

Nothing is dropped in silence. Every refusal is a `Problem` naming the file (and line), the
entry (its id, or `#3` for the third entry of the file when it has no valid id), the field
and what is wrong and allowed. A bad entry is refused and the others load; a file that
cannot be read or parsed is one problem and the other files load. An account of `to` that
the accounts file does not define is refused for that target only (`Problem.target`): the
post keeps its other targets, and is refused only when none is left.

An id used by two or more entries refuses every one of them (each problem names the other
places): the loader cannot tell which one is meant, and keeping the first by file name
would let a new file (`a.yaml`) silently replace a post already scheduled from another.

What the result says for whoever syncs it into the outbox: `posts` is what the calendar
holds now; `refused_ids` are ids that are in the calendar but were refused whole (the
outbox should keep what it has for them, not cancel them); `incomplete_files` are files
(and folders) not read in full (a syntax error, an entry without a readable id), so a post
last seen there may still be in them; `complete` is false when anything could not be read,
the folder itself included, and then a post missing from `posts` proves nothing.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import reprlib
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from social_pipelines.accounts import AccountBook
from social_pipelines.errors import ConfigError
from social_pipelines.models import MAX_POST_IMAGES, POST_ID_PATTERN, Post, PostImage
from social_pipelines.platforms.account import NAME_PATTERN
from social_pipelines.platforms.capabilities import Capability
from social_pipelines.when import WhenError, parse_when, zone

CALENDAR_SUFFIXES = frozenset({".yaml", ".yml", ".json"})
MAX_TEXT = 20_000
MAX_ALT = 5_000
MAX_URL = 2048
SETTING = "SOCIAL_CALENDAR_DIR"

_ID_RULE = "1 to 100 letters, digits, '_' or '-'"
_NAME_RULE = "1 to 64 letters, digits or '_'"
_SHORT = reprlib.Repr()
_SHORT.maxstring = 80
_SHORT.maxother = 80
_SHORT.maxlist = _SHORT.maxdict = _SHORT.maxtuple = _SHORT.maxset = 4
_SHORT.maxlevel = 2


def _fail(message: str) -> PydanticCustomError:
    return PydanticCustomError("calendar", "{message}", {"message": message})


def _shown(value: object) -> str:
    """A bad value, short: a file may hold anything, and a message must stay one line."""
    return _SHORT.repr(value)


class ImageEntry(BaseModel):
    """One image of an entry: `path` (a file, relative to the calendar file) or `url`
    (https:// only), and its alt text."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    path: str | None = Field(default=None, min_length=1, max_length=MAX_URL)
    url: str | None = Field(default=None, min_length=1, max_length=MAX_URL)
    alt: str = Field(default="", max_length=MAX_ALT)

    @field_validator("path")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None and "://" in value:
            raise _fail(
                f"{value!r} is a URL, not a file: give an https:// image as `url:`, a file "
                "relative to this calendar file as `path:`"
            )
        return value

    @field_validator("url")
    @classmethod
    def _an_https_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme != "https" or not parts.netloc:
            raise _fail(
                f"{value!r} is not an https:// URL: only https:// images are fetched; put "
                "the file beside the calendar and give it as `path:`"
            )
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ImageEntry:
        if (self.path is None) == (self.url is None):
            raise _fail(
                "an image needs exactly one of `path:` (a file, relative to this calendar "
                "file) or `url:` (an https:// URL)"
                + (", not both" if self.path is not None else "")
            )
        return self


class CalendarEntry(BaseModel):
    """One post as the calendar file writes it (module docstring); `at` is still as
    written (text or a YAML time), read against the zones by `load_calendar`."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: str
    at: str | datetime
    timezone: str | None = None
    to: tuple[str, ...]
    text: str = Field(max_length=MAX_TEXT)
    link: str | None = Field(default=None, max_length=MAX_URL)
    images: tuple[ImageEntry, ...] = ()
    text_for: dict[str, str] = Field(default_factory=dict)

    @field_validator("id", mode="plain")
    @classmethod
    def _an_id(cls, value: object) -> str:
        if not isinstance(value, str):
            raise _fail(f"must be text of {_ID_RULE}; quote it ('{value}') (got {_shown(value)})")
        if not _matches(POST_ID_PATTERN, value):
            raise _fail(f"{value!r} is not an id: use {_ID_RULE}")
        return value

    @field_validator("at", mode="plain")
    @classmethod
    def _a_time(cls, value: object) -> str | datetime:
        if isinstance(value, datetime | str):
            return value
        if isinstance(value, date):
            raise _fail(
                f"{value.isoformat()} is a date without a time of day: write the time too, "
                f"such as {value.isoformat()} 09:00 (or {value.isoformat()}T09:00:00+01:00)"
            )
        raise _fail(
            "must be a time such as 2026-12-24T09:00:00+01:00 (or 2026-12-24 09:00 with a "
            f"time zone) (got {_shown(value)})"
        )

    @field_validator("timezone", mode="plain")
    @classmethod
    def _a_zone(cls, value: object) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str):
            raise _fail(f"must be an IANA zone name such as Europe/Berlin (got {_shown(value)})")
        try:
            zone(value)
        except WhenError as error:
            raise _fail(str(error)) from None
        return value

    @field_validator("to", mode="plain")
    @classmethod
    def _accounts(cls, value: object) -> tuple[str, ...]:
        rule = (
            "must name the accounts to post as: a list ([brand, brand_eu]) or one text "
            "('brand' or 'brand, brand_eu')"
        )
        if isinstance(value, str):
            names = [name.strip() for name in value.split(",")]
        elif isinstance(value, list) and all(isinstance(name, str) for name in value):
            names = [name.strip() for name in value]
        else:
            raise _fail(f"{rule} (got {_shown(value)})")
        names = [name for name in dict.fromkeys(names) if name]
        if not names:
            raise _fail(rule)
        bad = [name for name in names if not _matches(NAME_PATTERN, name)]
        if bad:
            raise _fail(
                f"{', '.join(map(repr, bad))}: not an account name; an account name is "
                f"{_NAME_RULE}, several are separated by commas"
            )
        return tuple(names)

    @field_validator("link")
    @classmethod
    def _a_link(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc or " " in value:
            raise _fail(f"{value!r} is not an http:// or https:// URL")
        return value

    @field_validator("images", mode="before")
    @classmethod
    def _few_images(cls, value: object) -> object:
        if not isinstance(value, list):
            raise _fail(
                "must be a list of images, each with `path:` or `url:` and `alt:` "
                f"(got {_shown(value)})"
            )
        items: list[object] = value
        if len(items) > MAX_POST_IMAGES:
            raise _fail(f"at most {MAX_POST_IMAGES} images per post (got {len(items)})")
        return tuple(items)

    @model_validator(mode="after")
    def _consistent(self) -> CalendarEntry:
        strays = [name for name in self.text_for if name not in self.to]
        if strays:
            raise PydanticCustomError(
                "calendar_text_for",
                "{names}: not a target of this post (to: {targets}); every key of "
                "text_for must be one of them",
                {"names": ", ".join(map(repr, strays)), "targets": ", ".join(self.to)},
            )
        if not self.images and not self.link:
            empty = [name for name in self.to if not self.text_for.get(name, self.text).strip()]
            if empty:
                raise PydanticCustomError(
                    "calendar_empty",
                    "nothing to post to {names}: give a text, a link or an image",
                    {"names": ", ".join(empty)},
                )
        return self


_FIELDS = tuple(CalendarEntry.model_fields)
_IMAGE_FIELDS = tuple(ImageEntry.model_fields)


@dataclass(frozen=True)
class Problem:
    """Something in the calendar that was refused, and where.

    `entry` is the entry's id, or `#3` (the third entry of the file, counting from 1) when
    it has no valid id, or None for the file (or folder) itself. `field` is the entry's
    field (`at`, `images[2].url`, images counted from 1 too); `target` is set when only
    that account of the post was refused and the rest of the post loaded. `line` is the
    entry's first line (YAML) or where a file stops parsing; `index` the entry's place in
    its file's list, from 0.
    """

    file: Path
    entry: str | None
    field: str | None
    message: str
    line: int | None = None
    target: str | None = None
    index: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        if self.entry is not None:
            where += (
                f", entry {self.entry}"
                if self.entry.startswith("#")
                else (f", entry {self.entry!r}")
            )
        if self.field:
            where += f", field {self.field!r}"
        return f"{where}: {self.message}"

    def as_metadata(self) -> dict[str, object]:
        """Plain values for run metadata (JSON)."""
        return {
            "file": str(self.file),
            "line": self.line,
            "entry": self.entry,
            "field": self.field,
            "target": self.target,
            "index": self.index,
            "problem": self.message,
        }


@dataclass(frozen=True)
class SourcedPost:
    """A post of the calendar and where it is written: `index` is its place in the file's
    list (from 0), `line` its first line (YAML only)."""

    post: Post
    file: Path
    index: int
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else str(self.file)
        return f"{where}, entry {self.post.id!r}"


@dataclass(frozen=True)
class CalendarLoad:
    """What the calendar holds, and everything in it that was refused (module docstring
    for what `refused_ids`, `incomplete_files` and `complete` tell a sync)."""

    directory: Path
    posts: dict[str, SourcedPost] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    refused_ids: frozenset[str] = frozenset()
    incomplete_files: frozenset[Path] = frozenset()
    files: tuple[Path, ...] = ()
    listed: bool = True

    @property
    def complete(self) -> bool:
        """Every file was read in full: a post absent from `posts` and `refused_ids` is not
        in the calendar."""
        return self.listed and not self.incomplete_files


def load_calendar(
    directory: Path,
    accounts: AccountBook | Collection[str] | None,
    *,
    default_timezone: str | None = None,
) -> CalendarLoad:
    """Read every calendar file under `directory` into posts, never raising on what the
    files hold.

    `accounts` are the accounts a post may go to (an accounts file, or their names); None
    skips that check (account names are still checked for their form). `default_timezone`
    reads an `at` without an offset when its entry gives no `timezone`
    (SOCIAL_DEFAULT_TIMEZONE); an unknown zone there is a ConfigError, since it is the
    caller's setting and not the calendar's.
    """
    if default_timezone:
        try:
            zone(default_timezone)
        except WhenError as error:
            raise ConfigError(f"SOCIAL_DEFAULT_TIMEZONE: {error}") from None
    reader = _Reader(directory, accounts, default_timezone or None)
    return reader.read()


@dataclass
class _Candidate:
    post: Post
    file: Path
    index: int
    line: int | None
    target_problems: list[Problem]


class _Reader:
    def __init__(
        self,
        directory: Path,
        accounts: AccountBook | Collection[str] | None,
        default_timezone: str | None,
    ) -> None:
        self.directory = directory
        self.book = accounts if isinstance(accounts, AccountBook) else None
        if accounts is None:
            self.known: frozenset[str] | None = None
        elif isinstance(accounts, AccountBook):
            self.known = frozenset(accounts.accounts)
        else:
            self.known = frozenset(accounts)
        self.default_timezone = default_timezone
        self.problems: list[Problem] = []
        self.incomplete: set[Path] = set()
        self.refused: set[str] = set()
        self.candidates: dict[str, _Candidate] = {}
        # Every entry with a readable id, loaded or refused: ids are unique among them all.
        self.places: dict[str, list[tuple[Path, int, int | None]]] = {}

    def read(self) -> CalendarLoad:
        files, listed = self._files()
        for path in files:
            self._read_file(path)
        posts = self._unique()
        # In the order of the files, and of the entries in each (targets and duplicated
        # ids are found after the entry is read).
        rank = {path: number for number, path in enumerate(files)}
        problems = sorted(
            self.problems,
            key=lambda problem: (
                rank.get(problem.file, -1),
                -1 if problem.index is None else problem.index,
            ),
        )
        return CalendarLoad(
            directory=self.directory,
            posts=posts,
            problems=problems,
            refused_ids=frozenset(self.refused - set(posts)),
            incomplete_files=frozenset(self.incomplete),
            files=tuple(files),
            listed=listed,
        )

    def _files(self) -> tuple[list[Path], bool]:
        directory = self.directory
        if not directory.exists():
            self._problem(directory, f"the calendar folder does not exist ({SETTING})")
            return [], False
        if not directory.is_dir():
            self._problem(directory, f"is not a folder; {SETTING} names the calendar's folder")
            return [], False

        def unreadable(error: OSError) -> None:
            where = Path(error.filename) if error.filename else directory
            self._problem(where, f"cannot be read: {error.strerror or error}")
            self.incomplete.add(where)

        found: list[Path] = []
        for root, folders, names in os.walk(directory, onerror=unreadable):
            folders[:] = sorted(name for name in folders if not name.startswith("."))
            found.extend(
                Path(root, name)
                for name in names
                if not name.startswith(".") and Path(name).suffix.lower() in CALENDAR_SUFFIXES
            )
        listed = directory not in self.incomplete
        return sorted(found, key=lambda path: path.relative_to(directory).parts), listed

    def _problem(self, file: Path, message: str) -> None:
        self.problems.append(Problem(file=file, entry=None, field=None, message=message))

    def _read_file(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as error:
            self._file_failed(path, f"cannot be read: {error.strerror or error}")
            return
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as error:
            line = data[: error.start].count(b"\n") + 1
            self._file_failed(
                path, f"is not UTF-8 text (byte {error.start + 1}); save it as UTF-8", line
            )
            return
        parsed = _parse_json(text) if path.suffix.lower() == ".json" else _parse_yaml(text)
        if isinstance(parsed, _Unparsed):
            self._file_failed(path, parsed.message, parsed.line)
            return
        entries, lines = self._entries(path, parsed)
        if entries is None:
            return
        for index, raw in enumerate(entries):
            node = lines[index] if index < len(lines) else _Node(None, ())
            self._read_entry(path, index, raw, node)

    def _file_failed(self, path: Path, message: str, line: int | None = None) -> None:
        self.problems.append(Problem(file=path, entry=None, field=None, message=message, line=line))
        self.incomplete.add(path)

    def _entries(self, path: Path, parsed: _Parsed) -> tuple[list[Any] | None, list[_Node]]:
        shape = (
            "a calendar file is a list of posts (`- id: ...`), or a mapping with the one key "
            "`posts` holding that list"
        )
        value, nodes = parsed.value, parsed.entries
        if value is None:
            return [], []
        if isinstance(value, dict):
            keys = list(value)
            if keys != ["posts"]:
                unknown = [key for key in keys if key != "posts"]
                what = (
                    f"unknown top-level key(s) {_shown(unknown)}" if unknown else "no `posts` key"
                )
                self._file_failed(path, f"{what}; {shape}", parsed.line)
                return None, []
            value = value["posts"]
            if value is None:
                return [], []
        if not isinstance(value, list):
            self._file_failed(path, f"holds {_kind(value)}; {shape}", parsed.line)
            return None, []
        return value, nodes

    def _read_entry(self, path: Path, index: int, raw: object, node: _Node) -> None:
        label = f"#{index + 1}"
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        readable_id = (
            raw_id if isinstance(raw_id, str) and _matches(POST_ID_PATTERN, raw_id) else None
        )
        entry = readable_id or label

        def refuse(field: str | None, message: str, target: str | None = None) -> Problem:
            return Problem(path, entry, field, message, node.line, target, index)

        if readable_id is None:
            self.incomplete.add(path)
        else:
            self.refused.add(readable_id)  # until it loads
            self.places.setdefault(readable_id, []).append((path, index, node.line))
        if not isinstance(raw, dict):
            self.problems.append(
                refuse(
                    None,
                    f"holds {_kind(raw)}; an entry is a mapping of fields ({', '.join(_FIELDS)})",
                )
            )
            return
        # A key written twice refuses the entry (which of the two was meant?), and the
        # rest of it is still checked, so that one round of fixes is enough.
        self.problems.extend(refuse(where, message) for where, message in node.duplicates)
        try:
            parsed = CalendarEntry.model_validate(raw)
        except ValidationError as error:
            self.problems.extend(refuse(where, message) for where, message in _explain(error))
            return
        except (RecursionError, TypeError, ValueError) as error:
            self.problems.append(refuse(None, f"cannot be read: {_shown(str(error))}"))
            return
        if node.duplicates:
            return

        post, problems = self._post(path, parsed, refuse)
        if post is None:
            self.problems.extend(problems)
            return
        if post.id not in self.candidates:  # a second one is refused with the first
            self.candidates[post.id] = _Candidate(post, path, index, node.line, problems)

    def _post(
        self, path: Path, entry: CalendarEntry, refuse: Callable[..., Problem]
    ) -> tuple[Post | None, list[Problem]]:
        """The post of a valid entry, or None with the problems that refuse it; with a post,
        the problems are targets refused one by one."""
        zone_name = entry.timezone or self.default_timezone
        try:
            at = parse_when(entry.at, timezone=zone_name)
        except WhenError as error:
            return None, [refuse("at", str(error))]

        images: list[PostImage] = []
        failures: list[Problem] = []
        for number, image in enumerate(entry.images, start=1):
            if image.url is not None:
                images.append(PostImage(source=image.url, alt=image.alt))
                continue
            assert image.path is not None  # one of the two, by ImageEntry
            source = Path(os.path.normpath(path.parent.absolute() / image.path))
            if what := _not_a_file(source):
                failures.append(
                    refuse(
                        f"images[{number}].path",
                        f"{image.path!r} ({source}) {what}; a path is relative to the folder "
                        "of this calendar file",
                    )
                )
                continue
            images.append(PostImage(source=str(source), alt=image.alt))
        if failures:
            return None, failures

        targets: list[str] = []
        dropped: list[Problem] = []
        for name in entry.to:
            if reason := self._cannot_post_as(name):
                dropped.append(refuse("to", reason, target=name))
            else:
                targets.append(name)
        if not targets:
            return None, [
                refuse("to", f"{problem.message}; no target of this post is left")
                for problem in dropped
            ]
        try:
            post = Post(
                id=entry.id,
                text=entry.text,
                link=entry.link,
                images=tuple(images),
                targets=tuple(targets),
                at=at,
                texts={name: text for name, text in entry.text_for.items() if name in targets},
            )
        except ValidationError as error:
            return None, [refuse(where, message) for where, message in _explain(error)]
        return post, dropped

    def _cannot_post_as(self, name: str) -> str | None:
        if self.known is not None and name not in self.known:
            source = f" in the accounts file ({self.book.path})" if self.book else ""
            return (
                f"no account named {name!r}{source}; defined: "
                f"{', '.join(sorted(self.known)) or 'none'}"
            )
        if self.book is not None and self.book.lacks(name, Capability.PUBLISH):
            platform = self.book.accounts[name].platform
            return f"account {name!r} is on {platform}, which cannot publish posts"
        return None

    def _unique(self) -> dict[str, SourcedPost]:
        posts: dict[str, SourcedPost] = {}
        for post_id, places in self.places.items():
            if len(places) == 1:
                if (only := self.candidates.get(post_id)) is not None:
                    posts[post_id] = SourcedPost(only.post, only.file, only.index, only.line)
                    self.problems.extend(only.target_problems)
                continue
            shown = [_place(*place) for place in places]
            for (file, index, line), place in zip(places, shown, strict=True):
                others = ", ".join(other for other in shown if other != place)
                self.problems.append(
                    Problem(
                        file,
                        post_id,
                        "id",
                        f"id {post_id!r} is also used by {others}; an id is unique in the "
                        "whole calendar: every entry with it is refused until all but one "
                        "are renamed",
                        line=line,
                        index=index,
                    )
                )
        return posts


def _place(file: Path, index: int, line: int | None) -> str:
    where = f"{file}:{line}" if line else str(file)
    return f"{where} (entry #{index + 1})"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


def _not_a_file(path: Path) -> str | None:
    try:
        if path.is_file():
            return None
        return "is a folder, not an image" if path.is_dir() else "does not exist"
    except OSError as error:
        return f"cannot be read: {error.strerror or error}"


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {_shown(value)}"


def _field_name(loc: Iterable[int | str]) -> str:
    """`images[2].url` from pydantic's ('images', 1, 'url'): items counted from 1."""
    name = ""
    for part in loc:
        if isinstance(part, int):
            name += f"[{part + 1}]"
        else:
            name += f".{part}" if name else str(part)
    return name


def _explain(error: ValidationError) -> list[tuple[str | None, str]]:
    """Each problem of a ValidationError as (field, message saying what is allowed)."""
    found: dict[tuple[str | None, str], None] = {}
    for item in error.errors():
        loc = item["loc"]
        where = _field_name(loc) or None
        kind = item["type"]
        if kind.startswith("calendar"):
            message = item["msg"]
        elif kind == "extra_forbidden" and len(loc) > 0:
            *parent, last = loc
            allowed = _IMAGE_FIELDS if parent else _FIELDS
            key = str(last)
            where = ".".join(filter(None, (_field_name(parent), key)))
            close = difflib.get_close_matches(key, allowed, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            message = f"unknown field; {hint}allowed: {', '.join(allowed)}"
        elif kind == "missing":
            message = "is required" + (f": {_REQUIRED[where]}" if where in _REQUIRED else "")
        elif kind == "string_type":
            message = (
                f"must be text (got {_shown(item.get('input'))}); put it in quotes where YAML "
                "would read a number, a date, yes/no or null"
            )
        elif kind == "model_type":
            message = (
                "an image is a mapping with `path:` (a file, relative to this calendar file) "
                f"or `url:` (https://), and `alt:` (got {_shown(item.get('input'))})"
            )
        else:
            message = item["msg"]
            value = item.get("input")
            if value is None:
                message += " (got an empty value)"
            elif not isinstance(value, dict):
                message += f" (got {_shown(value)})"
        found[(where, message)] = None
    return list(found)


_REQUIRED = {
    "id": f"a name for the post, {_ID_RULE}, unique in the calendar",
    "at": "when to publish, such as 2026-12-24T09:00:00+01:00",
    "to": "the accounts to post as, such as [brand] or 'brand, brand_eu'",
    "text": 'the post\'s text ("" when a link or an image says it all)',
}


# Reading the files: a value, each entry's line and duplicated keys, or why it cannot be read.


@dataclass(frozen=True)
class _Node:
    line: int | None
    duplicates: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class _Parsed:
    value: object
    entries: list[_Node]
    line: int | None = None


@dataclass(frozen=True)
class _Unparsed:
    message: str
    line: int | None = None


class _Loader(yaml.SafeLoader):
    """SafeLoader whose impossible timestamps (2026-13-45 09:00:00) stay text, for `at` to
    refuse in its entry instead of failing the whole file."""


def _timestamp(loader: _Loader, node: Node) -> object:
    assert isinstance(node, ScalarNode)  # a timestamp is a scalar by its tag
    try:
        return SafeConstructor.construct_yaml_timestamp(loader, node)
    except ValueError:
        return str(node.value)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)


def _parse_yaml(text: str) -> _Parsed | _Unparsed:
    try:
        return _compose(text)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = " ".join(str(error.problem or error.context or "syntax error").split())
        return _Unparsed(f"is not valid YAML{where}: {reason}", line)
    except yaml.reader.ReaderError as error:
        line = text[: error.position].count("\n") + 1
        return _Unparsed(
            f"is not valid YAML at line {line}: character {chr(error.character)!r} is not "
            "allowed in YAML (a control character: is it a binary file?)",
            line,
        )
    except RecursionError:
        return _Unparsed("is not a calendar file: nested too deeply")
    except Exception as error:  # whatever else PyYAML raises on a bad file
        return _Unparsed(f"is not valid YAML: {_shown(str(error))}")


def _compose(text: str) -> _Parsed:
    loader = _Loader(text)  # the reader refuses control characters here already
    try:
        root = loader.get_single_node()
        # Before constructing: that flattens merge keys (<<) into the nodes.
        entries = _yaml_entries(root)
        value = None if root is None else loader.construct_document(root)
    finally:
        loader.dispose()
    line = root.start_mark.line + 1 if root is not None else None
    return _Parsed(value, entries, line)


def _yaml_entries(root: Node | None) -> list[_Node]:
    if isinstance(root, MappingNode):
        posts = [v for k, v in root.value if isinstance(k, ScalarNode) and k.value == "posts"]
        root = posts[0] if posts else None
    if not isinstance(root, SequenceNode):
        return []
    return [
        _Node(item.start_mark.line + 1, tuple(_yaml_duplicates(item, "", set())))
        for item in root.value
    ]


def _yaml_duplicates(node: Node, prefix: str, seen: set[int]) -> Iterable[tuple[str, str]]:
    """Keys written twice in one mapping (YAML would keep the last in silence)."""
    if id(node) in seen:
        return
    seen.add(id(node))
    if isinstance(node, SequenceNode):
        for number, item in enumerate(node.value, start=1):
            yield from _yaml_duplicates(item, f"{prefix}[{number}]", seen)
    elif isinstance(node, MappingNode):
        lines: dict[str, int] = {}
        for key, value in node.value:
            if not isinstance(key, ScalarNode):
                continue  # refused as a field name when the entry is validated
            name = str(key.value)
            where = f"{prefix}.{name}" if prefix else name
            if name in lines:
                yield (
                    where,
                    f"written twice (lines {lines[name]} and {key.start_mark.line + 1}): keep one",
                )
            lines.setdefault(name, key.start_mark.line + 1)
            yield from _yaml_duplicates(value, where, seen)


class _JsonObject(dict[str, Any]):
    duplicates: tuple[str, ...] = ()


def _json_object(pairs: list[tuple[str, Any]]) -> _JsonObject:
    value = _JsonObject(pairs)
    if len(value) < len(pairs):
        counts = Counter(key for key, _ in pairs)
        value.duplicates = tuple(key for key, count in counts.items() if count > 1)
    return value


def _parse_json(text: str) -> _Parsed | _Unparsed:
    try:
        value = json.loads(text, object_pairs_hook=_json_object)
    except json.JSONDecodeError as error:
        return _Unparsed(
            f"is not valid JSON at line {error.lineno}, column {error.colno}: {error.msg}",
            error.lineno,
        )
    except RecursionError:
        return _Unparsed("is not a calendar file: nested too deeply")
    except ValueError as error:  # a number too long to read, ...
        return _Unparsed(f"is not valid JSON: {_shown(str(error))}")
    items = value["posts"] if isinstance(value, dict) and list(value) == ["posts"] else value
    entries = (
        [_Node(None, tuple(_json_duplicates(item, ""))) for item in items]
        if isinstance(items, list)
        else []
    )
    return _Parsed(value, entries)


def _json_duplicates(value: object, prefix: str) -> Iterable[tuple[str, str]]:
    if isinstance(value, list):
        for number, item in enumerate(value, start=1):
            yield from _json_duplicates(item, f"{prefix}[{number}]")
    elif isinstance(value, _JsonObject):
        for key in value.duplicates:
            yield (f"{prefix}.{key}" if prefix else key, "written twice: keep one")
        for key, item in value.items():
            yield from _json_duplicates(item, f"{prefix}.{key}" if prefix else key)
