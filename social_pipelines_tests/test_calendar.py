"""The content calendar: what loads, what is reported (file, entry, field) and skipped.

Real files in `tmp_path`; a property-based test throws generated and corrupted calendars
at the loader."""

from __future__ import annotations

import json
import string
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from social_pipelines.accounts import load_accounts
from social_pipelines.calendar import CalendarLoad, Problem, load_calendar
from social_pipelines.errors import ConfigError
from social_pipelines.models import Post, PostImage

ACCOUNTS = {"brand", "brand_eu"}


def _write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def _load(folder: Path, zone: str | None = None) -> CalendarLoad:
    return load_calendar(folder, ACCOUNTS, default_timezone=zone)


def _only(result: CalendarLoad) -> Problem:
    assert len(result.problems) == 1, [str(p) for p in result.problems]
    return result.problems[0]


GOOD_YAML = """\
- id: launch-2026
  at: 2026-12-24T09:00:00+01:00
  to: [brand, brand_eu]
  text: "We launched!"
  link: https://example.com/launch
  images:
    - path: images/launch.jpg
      alt: "The new product on a desk"
    - url: https://cdn.example.com/team.png
      alt: "The team"
  text_for:
    brand_eu: "Wir sind live!"
- id: follow_up
  at: "2026-12-27 10:00"
  timezone: America/New_York
  to: "brand, brand_eu"
  text: "Thanks for a great week"
"""


def test_a_good_yaml_file_loads_into_posts(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "launch.jpg").write_bytes(b"\xff\xd8jpeg")
    path = _write(tmp_path, "december.yaml", GOOD_YAML)
    result = _load(tmp_path)
    assert result.problems == []
    assert result.complete
    assert result.files == (path,)
    assert list(result.posts) == ["launch-2026", "follow_up"]
    launch = result.posts["launch-2026"]
    assert (launch.file, launch.index, launch.line) == (path, 0, 1)
    assert launch.post == Post(
        id="launch-2026",
        text="We launched!",
        link="https://example.com/launch",
        images=(
            PostImage(
                source=str(tmp_path / "images" / "launch.jpg"), alt="The new product on a desk"
            ),
            PostImage(source="https://cdn.example.com/team.png", alt="The team"),
        ),
        targets=("brand", "brand_eu"),
        at=datetime(2026, 12, 24, 8, tzinfo=UTC),
        texts={"brand_eu": "Wir sind live!"},
    )
    assert launch.post.body_for("brand_eu") == "Wir sind live!\n\nhttps://example.com/launch"
    follow = result.posts["follow_up"].post
    assert follow.targets == ("brand", "brand_eu")
    assert follow.at == datetime(2026, 12, 27, 15, tzinfo=UTC)
    assert result.posts["follow_up"].line == 13


def test_a_good_json_file_and_a_posts_mapping_in_a_subfolder_load(tmp_path: Path) -> None:
    entries = [
        {"id": "j1", "at": "2026-12-24T09:00:00Z", "to": ["brand"], "text": "json"},
        {
            "id": "j2",
            "at": "2026-12-24 09:00",
            "to": "brand_eu",
            "text": "",
            "link": "http://x.example",
        },
    ]
    _write(tmp_path, "a.json", json.dumps(entries))
    _write(
        tmp_path,
        "sub/b.yml",
        "posts:\n  - {id: y1, at: 2026-12-24T10:00:00Z, to: brand, text: y}\n",
    )
    _write(tmp_path, "empty.yaml", "")
    _write(tmp_path, ".hidden.yaml", "not: [a calendar")
    _write(tmp_path, ".git/c.yaml", "not: [a calendar")
    _write(tmp_path, "notes.txt", "not: [a calendar")
    result = _load(tmp_path, zone="Europe/Berlin")
    assert result.problems == []
    assert list(result.posts) == ["j1", "j2", "y1"]
    assert result.posts["j2"].post.at == datetime(2026, 12, 24, 8, tzinfo=UTC)
    assert result.posts["j2"].post.body_for("brand_eu") == "http://x.example"
    assert result.posts["y1"].file == tmp_path / "sub" / "b.yml"


def test_a_missing_folder_is_one_problem_and_an_empty_one_no_posts(tmp_path: Path) -> None:
    missing = _load(tmp_path / "nowhere")
    problem = _only(missing)
    assert problem.file == tmp_path / "nowhere"
    assert "does not exist (SOCIAL_CALENDAR_DIR)" in problem.message
    assert not missing.complete
    empty = _load(tmp_path)
    assert (empty.posts, empty.problems, empty.complete) == ({}, [], True)


BAD_ENTRIES = [
    # (entry text, entry label, field, part of the message)
    (
        "{id: e1, at: 2026-12-24T09:00:00Z, to: brand, txt: hi, text: hi}",
        "e1",
        "txt",
        "unknown field; did you mean 'text'?",
    ),
    ("{id: e2, at: 2026-12-24T09:00:00Z, to: brand}", "e2", "text", "is required"),
    (
        "{id: 'bad id', at: 2026-12-24T09:00:00Z, to: brand, text: x}",
        "#3",
        "id",
        "'bad id' is not an id",
    ),
    ("{at: 2026-12-24T09:00:00Z, to: brand, text: x}", "#4", "id", "is required"),
    ("{id: e5, at: 2026-12-24, to: brand, text: x}", "e5", "at", "is a date without a time of day"),
    ("{id: e6, at: tomorrow, to: brand, text: x}", "e6", "at", "is not a time"),
    ("{id: e7, at: 2026-12-24T09:00:00Z, to: [], text: x}", "e7", "to", "must name the accounts"),
    ("{id: e8, at: 2026-12-24T09:00:00Z, to: brand, text: 42}", "e8", "text", "must be text"),
    (
        "{id: e9, at: 2026-12-24T09:00:00Z, to: brand, text: x, link: ftp://x.example}",
        "e9",
        "link",
        "not an http:// or https:// URL",
    ),
    (
        "{id: e10, at: 2026-12-24T09:00:00Z, to: brand, text: x, text_for: {brand_ue: y}}",
        "e10",
        None,
        "'brand_ue': not a target of this post (to: brand)",
    ),
    (
        "{id: e11, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{url: http://x.example/a.jpg}]}",
        "e11",
        "images[1].url",
        "is not an https:// URL",
    ),
    (
        "{id: e12, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{url: ftp://x.example/a.jpg}]}",
        "e12",
        "images[1].url",
        "is not an https:// URL",
    ),
    (
        "{id: e13, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{path: ftp://x.example/a.jpg}]}",
        "e13",
        "images[1].path",
        "is a URL, not a file",
    ),
    (
        "{id: e14, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{path: a.jpg, url: https://x.example/a.jpg}]}",
        "e14",
        "images[1]",
        "exactly one of `path:`",
    ),
    (
        "{id: e15, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{path: gone.jpg}]}",
        "e15",
        "images[1].path",
        "does not exist; a path is relative to the folder",
    ),
    (
        "{id: e16, at: 2026-12-24T09:00:00Z, to: brand, text: x, "
        "images: [{url: https://x.example/a.jpg, alt: 3}]}",
        "e16",
        "images[1].alt",
        "must be text",
    ),
    (
        "{id: e17, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: "
        + "["
        + ", ".join(["{url: https://x.example/a.jpg}"] * 5)
        + "]}",
        "e17",
        "images",
        "at most 4 images per post (got 5)",
    ),
    (
        "{id: e18, at: 2026-12-24T09:00:00Z, to: brand, text: '  '}",
        "e18",
        None,
        "nothing to post to brand",
    ),
    (
        "{id: e19, at: 2026-12-24 09:00, timezone: Mars/Olympus, to: brand, text: x}",
        "e19",
        "timezone",
        "unknown time zone 'Mars/Olympus'",
    ),
    (
        "{id: e20, at: 2026-12-24T09:00:00Z, to: 'brand eu', text: x}",
        "e20",
        "to",
        "'brand eu': not an account name",
    ),
    ("just text", "#21", None, "holds str 'just text'; an entry is a mapping"),
]


def test_each_bad_entry_is_reported_with_file_entry_and_field_and_the_good_ones_load(
    tmp_path: Path,
) -> None:
    good = "{id: good, at: 2026-12-24T09:00:00Z, to: brand, text: fine}"
    lines = [f"- {entry}" for entry, *_ in BAD_ENTRIES] + [f"- {good}"]
    path = _write(tmp_path, "bad.yaml", "\n".join(lines) + "\n")
    result = _load(tmp_path)
    assert list(result.posts) == ["good"]
    assert result.posts["good"].index == len(BAD_ENTRIES)
    by_line = {problem.line: problem for problem in result.problems}
    assert len(result.problems) == len(BAD_ENTRIES), [str(p) for p in result.problems]
    for number, (_entry, label, field, message) in enumerate(BAD_ENTRIES, start=1):
        problem = by_line[number]
        assert (problem.file, problem.entry, problem.field) == (path, label, field), str(problem)
        assert message in problem.message, str(problem)
        assert problem.index == number - 1
        assert str(problem).startswith(f"{path}:{number}, entry ")
    # An entry refused with a readable id is in the calendar (a sync must not cancel it);
    # one without leaves the file incomplete (a post last seen there may still be in it).
    assert {"e1", "e2", "e19"} <= result.refused_ids
    assert "good" not in result.refused_ids
    assert result.incomplete_files == {path}
    assert not result.complete


def test_the_problem_reads_like_a_compiler_message(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "december.yaml",
        """\
        - id: launch-2026
          at: 2026-03-29 02:30
          timezone: Europe/Berlin
          to: brand
          text: hi
        """,
    )
    problem = _only(_load(tmp_path))
    assert str(problem) == (
        f"{path}:1, entry 'launch-2026', field 'at': 2026-03-29 02:30:00 does not exist in "
        "Europe/Berlin: clocks skip it when daylight saving starts (UTC offset +01:00 becomes "
        "+02:00); pick another time or give the offset"
    )
    assert problem.as_metadata()["entry"] == "launch-2026"


def test_a_key_written_twice_refuses_the_entry(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a.yaml",
        "- id: y\n  at: 2026-12-24T09:00:00Z\n  to: brand\n  text: a\n  text: b\n",
    )
    _write(
        tmp_path,
        "b.json",
        '[{"id": "j", "at": "2026-12-24T09:00:00Z", "to": "brand", "text": "a", "text": "b"}]',
    )
    result = _load(tmp_path)
    assert result.posts == {}
    assert [(p.entry, p.field) for p in result.problems] == [("y", "text"), ("j", "text")]
    assert "written twice (lines 4 and 5)" in result.problems[0].message


def test_yaml_merge_keys_are_no_duplicates(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a.yaml",
        """\
        - &base {id: one, at: 2026-12-24T09:00:00Z, to: brand, text: base}
        - <<: *base
          id: two
          text: own
        """,
    )
    result = _load(tmp_path)
    assert result.problems == []
    assert result.posts["two"].post.text == "own"


def test_a_duplicate_id_across_files_refuses_both_naming_both(tmp_path: Path) -> None:
    entry = "- {id: same, at: 2026-12-24T09:00:00Z, to: brand, text: %s}\n"
    first = _write(tmp_path, "a.yaml", entry % "one")
    second = _write(
        tmp_path,
        "sub/b.yaml",
        "- {id: other, at: 2026-12-24T09:00:00Z, to: brand, text: x}\n" + entry % "two",
    )
    result = _load(tmp_path)
    assert list(result.posts) == ["other"]
    assert result.refused_ids == {"same"}
    one, two = result.problems
    assert (one.file, one.entry, one.field, one.line) == (first, "same", "id", 1)
    assert (two.file, two.entry, two.field, two.line) == (second, "same", "id", 2)
    assert f"also used by {second}:2 (entry #2)" in one.message
    assert f"also used by {first}:1 (entry #1)" in two.message


def test_a_duplicate_id_counts_entries_refused_for_other_reasons(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a.yaml",
        """\
        - {id: same, at: 2026-12-24T09:00:00Z, to: brand, text: good}
        - {id: same, at: tomorrow, to: brand, text: bad}
        """,
    )
    result = _load(tmp_path)
    assert result.posts == {}
    assert [(p.line, p.field) for p in result.problems] == [(1, "id"), (2, "at"), (2, "id")]


def test_an_unknown_account_is_refused_for_that_target_only(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "a.yaml",
        """\
        - id: both
          at: 2026-12-24T09:00:00Z
          to: [brand, ghost]
          text: hi
          text_for: {ghost: boo}
        - {id: none_left, at: 2026-12-24T09:00:00Z, to: ghost, text: hi}
        """,
    )
    result = _load(tmp_path)
    assert list(result.posts) == ["both"]
    post = result.posts["both"].post
    assert (post.targets, post.texts) == (("brand",), {})
    kept, refused = result.problems
    assert (kept.file, kept.entry, kept.field, kept.target) == (path, "both", "to", "ghost")
    assert kept.message == "no account named 'ghost'; defined: brand, brand_eu"
    # Refused whole: `target` is only set where the rest of the post loaded.
    assert (refused.entry, refused.field, refused.target) == ("none_left", "to", None)
    assert refused.message == (
        "no account named 'ghost'; defined: brand, brand_eu; no target of this post is left"
    )
    assert result.refused_ids == {"none_left"}


def test_accounts_from_the_accounts_file(tmp_path: Path) -> None:
    accounts_file = tmp_path / "accounts.toml"
    accounts_file.write_text(
        '[accounts.brand]\nplatform = "mastodon"\ninstance_url = "https://social.example/"\n'
        'token_env = "BRAND_TOKEN"\n',
        encoding="utf-8",
    )
    book = load_accounts(accounts_file, {"BRAND_TOKEN": "t"})
    calendar = tmp_path / "calendar"
    _write(
        calendar, "a.yaml", "- {id: p, at: 2026-12-24T09:00:00Z, to: 'brand, brand_eu', text: hi}\n"
    )
    result = load_calendar(calendar, book)
    assert result.posts["p"].post.targets == ("brand",)
    assert _only(result).message == (
        f"no account named 'brand_eu' in the accounts file ({accounts_file}); defined: brand"
    )
    # Without accounts, only the names' form is checked.
    assert load_calendar(calendar, None).posts["p"].post.targets == ("brand", "brand_eu")


def test_a_naive_time_needs_a_zone_from_the_entry_or_the_default(tmp_path: Path) -> None:
    _write(tmp_path, "a.yaml", "- {id: naive, at: '2026-12-24 09:00', to: brand, text: x}\n")
    _write(tmp_path, "b.yaml", "- {id: yaml_naive, at: 2026-12-24 09:00:00, to: brand, text: x}\n")
    _write(
        tmp_path,
        "c.yaml",
        "- {id: own_zone, at: '2026-12-24 09:00', timezone: America/New_York,"
        " to: brand, text: x}\n",
    )
    without = _load(tmp_path)
    assert list(without.posts) == ["own_zone"]
    assert without.posts["own_zone"].post.at == datetime(2026, 12, 24, 14, tzinfo=UTC)
    assert [(p.entry, p.field) for p in without.problems] == [("naive", "at"), ("yaml_naive", "at")]
    assert all("has no UTC offset" in p.message for p in without.problems)
    default = _load(tmp_path, zone="Europe/Berlin")
    assert default.problems == []
    assert default.posts["naive"].post.at == datetime(2026, 12, 24, 8, tzinfo=UTC)
    assert default.posts["yaml_naive"].post.at == datetime(2026, 12, 24, 8, tzinfo=UTC)
    assert default.posts["own_zone"].post.at == datetime(2026, 12, 24, 14, tzinfo=UTC)


def test_an_unknown_default_zone_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="SOCIAL_DEFAULT_TIMEZONE: unknown time zone"):
        _load(tmp_path, zone="Mars/Olympus")


@pytest.mark.parametrize(
    ("zone", "naive", "offset", "utc", "problem"),
    [
        (
            "Europe/Berlin",
            "2026-03-29 02:30",
            "+02:00",
            datetime(2026, 3, 29, 0, 30, tzinfo=UTC),
            "does not exist",
        ),
        (
            "Europe/Berlin",
            "2026-10-25 02:30",
            "+02:00",
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "happens twice",
        ),
        (
            "Europe/Berlin",
            "2026-10-25 02:30",
            "+01:00",
            datetime(2026, 10, 25, 1, 30, tzinfo=UTC),
            "happens twice",
        ),
        (
            "America/New_York",
            "2026-03-08 02:30",
            "-04:00",
            datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
            "does not exist",
        ),
        (
            "America/New_York",
            "2026-11-01 01:30",
            "-04:00",
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            "happens twice",
        ),
        (
            "America/New_York",
            "2026-11-01 01:30",
            "-05:00",
            datetime(2026, 11, 1, 6, 30, tzinfo=UTC),
            "happens twice",
        ),
    ],
)
def test_daylight_saving_gaps_and_folds_are_refused_and_offsets_accepted(
    tmp_path: Path, zone: str, naive: str, offset: str, utc: datetime, problem: str
) -> None:
    iso = naive.replace(" ", "T") + ":00"
    _write(
        tmp_path,
        "a.yaml",
        f"""\
        - {{id: local, at: '{naive}', timezone: {zone}, to: brand, text: x}}
        - {{id: by_default, at: {naive}:00, to: brand, text: x}}
        - {{id: offset, at: '{iso}{offset}', timezone: {zone}, to: brand, text: x}}
        - {{id: yaml_offset, at: {iso}{offset}, to: brand, text: x}}
        """,
    )
    result = _load(tmp_path, zone=zone)
    assert [(p.entry, p.field) for p in result.problems] == [("local", "at"), ("by_default", "at")]
    for refused in result.problems:
        assert f"{naive}:00 {problem} in {zone}" in refused.message
        assert "give the offset" in refused.message
    assert result.posts["offset"].post.at == utc
    assert result.posts["yaml_offset"].post.at == utc


def test_relative_image_paths_are_made_absolute_against_the_files_folder(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "logo.png").write_bytes(b"png")
    (tmp_path / "sub" / "img").mkdir(parents=True)
    (tmp_path / "sub" / "img" / "a.jpg").write_bytes(b"jpg")
    absolute = tmp_path / "shared" / "logo.png"
    _write(
        tmp_path,
        "sub/a.yaml",
        f"""\
        - id: pics
          at: 2026-12-24T09:00:00Z
          to: brand
          text: x
          images:
            - {{path: img/a.jpg, alt: here}}
            - {{path: ../shared/logo.png, alt: up}}
            - {{path: '{absolute}'}}
            - {{path: img}}
        """,
    )
    result = _load(tmp_path)
    assert "is a folder, not an image" in _only(result).message
    assert _only(result).field == "images[4].path"
    _write(
        tmp_path,
        "sub/a.yaml",
        (tmp_path / "sub" / "a.yaml").read_text().replace("    - {path: img}\n", ""),
    )
    sources = [image.source for image in _load(tmp_path).posts["pics"].post.images]
    assert sources == [str(tmp_path / "sub" / "img" / "a.jpg"), str(absolute), str(absolute)]
    assert all(Path(source).is_absolute() for source in sources)


def test_a_relative_calendar_folder_still_gives_absolute_image_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "cal").mkdir()
    (tmp_path / "cal" / "a.jpg").write_bytes(b"jpg")
    _write(
        tmp_path,
        "cal/a.yaml",
        "- {id: p, at: 2026-12-24T09:00:00Z, to: brand, text: x, images: [{path: a.jpg}]}\n",
    )
    monkeypatch.chdir(tmp_path)
    result = _load(Path("cal"))
    assert result.posts["p"].post.images[0].source == str(tmp_path / "cal" / "a.jpg")


@pytest.mark.parametrize(
    ("name", "text", "line", "message"),
    [
        (
            "a.yaml",
            "- id: x\n  at: [\n  to: brand\n  text: 'open\n",
            4,
            "is not valid YAML at line 4",
        ),
        ("b.yaml", "- id: x\n   bad: indent\n", 2, "is not valid YAML at line 2"),
        ("c.yaml", "- id: x\n\t- tab\n", 2, "is not valid YAML at line 2"),
        ("d.json", '[\n  {"id": "x",\n   "at": }\n]', 3, "is not valid JSON at line 3, column 10"),
        ("e.json", "", 1, "is not valid JSON at line 1"),
        ("f.yaml", "id: x\nat: now\n", 1, "unknown top-level key(s) ['id', 'at']"),
        (
            "g.yaml",
            "just some words\n",
            1,
            "holds str 'just some words'; a calendar file is a list",
        ),
        ("h.json", '{"posts": 3}', None, "holds int 3"),
        ("i.yaml", "- a\n- \x00\n", 2, "character '\\x00' is not allowed"),
    ],
)
def test_a_file_that_does_not_parse_is_one_problem_naming_the_line(
    tmp_path: Path, name: str, text: str, line: int | None, message: str
) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    _write(tmp_path, "zz_good.yaml", "- {id: good, at: 2026-12-24T09:00:00Z, to: brand, text: x}\n")
    result = _load(tmp_path)
    assert list(result.posts) == ["good"]
    problem = _only(result)
    assert (problem.file, problem.entry, problem.field, problem.line) == (path, None, None, line)
    assert message in problem.message, problem.message
    assert result.incomplete_files == {path}


def test_a_file_that_is_not_utf8_is_one_problem(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_bytes(b"- id: x\n- \xff\xfe\n")
    problem = _only(_load(tmp_path))
    assert (problem.file, problem.line) == (path, 2)
    assert "is not UTF-8 text (byte 11); save it as UTF-8" in problem.message


def test_an_impossible_yaml_timestamp_is_refused_in_its_entry(tmp_path: Path) -> None:
    _write(
        tmp_path,
        "a.yaml",
        "- {id: bad, at: 2026-13-45 09:00:00, to: brand, text: x}\n"
        "- {id: good, at: 2026-12-24T09:00:00Z, to: brand, text: x}\n",
    )
    result = _load(tmp_path)
    assert list(result.posts) == ["good"]
    assert (_only(result).entry, _only(result).field) == ("bad", "at")
    assert "'2026-13-45 09:00:00' is not a time" in _only(result).message


# Property-based: generated calendars, valid entries mixed with corrupted ones and files.

_IDS = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=12)
_TEXT = st.text(max_size=40)
_ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "UTC", "Asia/Tokyo"])


@st.composite
def _valid_entry(draw: st.DrawFn, post_id: str) -> dict[str, object]:
    """An entry the loader must accept, with an unambiguous time (an offset, or a local
    time away from any daylight-saving change)."""
    day = draw(
        st.dates(min_value=datetime(2026, 1, 1).date(), max_value=datetime(2027, 12, 31).date())
    )
    hour = draw(st.integers(9, 20))
    entry: dict[str, object] = {
        "id": post_id,
        "to": draw(st.sampled_from([["brand"], "brand, brand_eu", "brand_eu"])),
    }
    if draw(st.booleans()):
        entry["at"] = (
            f"{day.isoformat()}T{hour:02d}:15:00{draw(st.sampled_from(['Z', '+01:00', '-05:00']))}"
        )
    else:
        entry["at"] = f"{day.isoformat()} {hour:02d}:15"
        entry["timezone"] = draw(_ZONES)
    entry["text"] = draw(_TEXT.filter(str.strip)) if not draw(st.booleans()) else "fixed text"
    if draw(st.booleans()):
        entry["link"] = "https://example.com/" + draw(st.text(string.ascii_lowercase, max_size=8))
    if draw(st.booleans()):
        entry["images"] = [
            draw(
                st.sampled_from(
                    [{"url": f"https://cdn.example.com/{n}.jpg"}, {"path": f"img/{n}.jpg"}]
                )
            )
            | {"alt": draw(_TEXT)}
            for n in range(draw(st.integers(0, 4)))
        ]
    return entry


_JUNK = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)
_FIELDS = ["id", "at", "timezone", "to", "text", "link", "images", "text_for"]


@st.composite
def _corrupted_entry(draw: st.DrawFn, base: dict[str, object]) -> object:
    how = draw(st.sampled_from(["junk", "drop", "wrong_type", "extra"]))
    if how == "junk":
        return draw(_JUNK)
    entry = dict(base)
    if how == "drop":
        entry.pop(draw(st.sampled_from(["at", "to", "text"])))
    elif how == "wrong_type":
        entry[draw(st.sampled_from(_FIELDS))] = draw(_JUNK)
    else:
        entry[draw(_TEXT.filter(lambda key: key not in _FIELDS))] = draw(_JUNK)
    return entry


@st.composite
def _calendar(draw: st.DrawFn) -> list[tuple[str, bytes, list[dict[str, object]], bool]]:
    """Files: (name, content, the valid entries written in it, whether it is intact)."""
    files = []
    counter = 0
    for number in range(draw(st.integers(1, 4))):
        entries: list[object] = []
        valid: list[dict[str, object]] = []
        for _ in range(draw(st.integers(0, 5))):
            counter += 1
            # Valid entries' ids are unique (the counter); corrupted ones never reuse them.
            entry = draw(_valid_entry(f"ok{counter}_{draw(_IDS)}"))
            if draw(st.integers(0, 2)) == 0:
                corrupted = draw(_corrupted_entry({**entry, "id": f"bad{counter}"}))
                if isinstance(corrupted, dict) and str(corrupted.get("id", "")).startswith("ok"):
                    corrupted["id"] = f"bad{counter}"
                entries.append(corrupted)
            else:
                entries.append(entry)
                valid.append(entry)
        kind = draw(st.sampled_from(["json", "yaml", "yml"]))
        if kind == "json":
            text = json.dumps(entries, ensure_ascii=draw(st.booleans()))
        else:
            text = yaml.safe_dump(entries, allow_unicode=draw(st.booleans()), sort_keys=False)
        data = text.encode("utf-8")
        intact = True
        damage = draw(st.sampled_from(["none", "none", "truncate", "bytes", "replace"]))
        if damage == "truncate" and data:
            data = data[: draw(st.integers(0, len(data) - 1))]
            intact = False
        elif damage == "bytes":
            at = draw(st.integers(0, len(data)))
            data = data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
            intact = False
        elif damage == "replace":
            data = draw(st.binary(max_size=200) | _TEXT.map(str.encode))
            intact = False
        files.append((f"f{number}.{kind}", data, valid, intact))
    return files


@settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(calendar=_calendar())
def test_generated_calendars_never_raise_and_every_valid_entry_loads(
    tmp_path_factory: pytest.TempPathFactory,
    calendar: list[tuple[str, bytes, list[dict[str, object]], bool]],
) -> None:
    folder = tmp_path_factory.mktemp("calendar")
    (folder / "img").mkdir()
    for n in range(4):
        (folder / "img" / f"{n}.jpg").write_bytes(b"jpg")
    for name, data, _valid, _intact in calendar:
        (folder / name).write_bytes(data)
    result = load_calendar(folder, ACCOUNTS, default_timezone=None)
    names = {folder / name for name, *_ in calendar}
    for problem in result.problems:
        assert problem.file in names
        assert problem.message.strip()
        assert str(problem).startswith(str(problem.file))
    broken = {problem.file for problem in result.problems if problem.entry is None}
    for sourced in result.posts.values():
        assert sourced.file not in broken
    for name, _data, valid, intact in calendar:
        if not intact:
            continue
        assert folder / name not in broken
        for entry in valid:
            post_id = str(entry["id"])
            assert post_id in result.posts, [str(p) for p in result.problems]
            sourced = result.posts[post_id]
            assert sourced.file == folder / name
            assert sourced.post.text == entry["text"]
            images = entry.get("images", [])
            assert isinstance(images, list)
            assert [image.alt for image in sourced.post.images] == [i["alt"] for i in images]
            assert all(
                Path(image.source).is_file() or image.source.startswith("https://")
                for image in sourced.post.images
            )
