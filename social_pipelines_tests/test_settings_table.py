"""The configuration table in the README and the runbook is what the settings class says."""

from __future__ import annotations

from pathlib import Path

import pytest

from social_pipelines import settings_table
from social_pipelines.settings import Settings


def test_the_committed_tables_are_not_stale() -> None:
    stale = settings_table.stale()
    assert not stale, f"run python -m {settings_table.MODULE}: stale in {stale}"


def test_every_setting_has_a_row_with_its_variable_and_a_meaning() -> None:
    rows = settings_table.render().splitlines()[2:]
    assert len(rows) == len(Settings.model_fields)
    for row in rows:
        variable, default, meaning = (cell.strip() for cell in row.strip("|").split(" | "))
        assert variable.startswith(("`SOCIAL_", "`DAGSTER_HOME`"))
        assert default and meaning, row


def test_a_changed_setting_makes_a_table_stale(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    table = settings_table.render()
    readme.write_text(f"# x\n{settings_table.BEGIN}\n{table}\n{settings_table.END}\nrest\n")
    assert settings_table.stale([readme]) == []
    readme.write_text(readme.read_text().replace("`PT6H`", "`PT5H`"))
    assert settings_table.stale([readme]) == [readme]


def test_secrets_are_marked_and_their_defaults_never_shown() -> None:
    rows = {row.split(" | ")[0].strip("| `"): row for row in settings_table.render().splitlines()}
    for name in ("SOCIAL_SECRET_KEY", "SOCIAL_LLM_API_KEY", "SOCIAL_SANDBOX_TOKEN"):
        assert "Secret: never shown" in rows[name]
    assert "sandbox-token" not in settings_table.render()


def test_a_file_without_the_markers_is_named(tmp_path: Path) -> None:
    path = tmp_path / "runbook.md"
    path.write_text("no table here\n")
    with pytest.raises(ValueError, match=r"runbook\.md: needs the lines"):
        settings_table.stale([path])
