"""The README's configuration table is generated from the settings model and current."""

from __future__ import annotations

from bizosaas_redis import config_docs
from bizosaas_redis.settings import Settings
from conftest import ROOT


def test_readme_table_is_up_to_date():
    assert config_docs.update_readme(ROOT / "README.md", check=True), "run scripts/config-docs"


def test_every_setting_is_documented_with_default_and_description():
    table = config_docs.render_table()
    for name, field in Settings.model_fields.items():
        if name == "stack":
            continue
        assert field.description, f"{name} has no description"
        row = next(line for line in table.splitlines() if line.startswith(f"| `redis:{field.alias}` |"))
        assert field.description.replace("|", "\\|") in row
    assert "| `redis:maxmemory` | `2gb` | 256mb |" in table
    assert "| `redis:password` | generated |" in table
