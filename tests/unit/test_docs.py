"""The README's generated tables are current and cover every setting and rule."""

from __future__ import annotations

from bizosaas_redis.settings import INTERNAL_FIELDS, Settings
from bizosaas_redis_ops import docs
from conftest import ROOT
from redis_policies.rules import RULES


def test_generated_blocks_are_up_to_date():
    assert docs.update_docs(ROOT, check=True) == [], "run bizosaas-redis docs"


def test_every_setting_is_documented_with_default_and_description():
    table = docs.config_table()
    for name, field in Settings.model_fields.items():
        if name in INTERNAL_FIELDS:
            continue
        assert field.description, f"{name} has no description"
        row = next(line for line in table.splitlines() if line.startswith(f"| `redis:{field.alias}` |"))
        assert field.description.replace("|", "\\|") in row
    assert "| `redis:maxmemory` | `2gb` | 256mb |" in table
    assert "| `redis:password` | generated |" in table


def test_every_rule_is_listed_with_its_enforcement_per_stack():
    table = docs.policy_table()
    for rule in RULES:
        assert f"| `{rule.name}` |" in table
    assert "| `redis-image-pinned` | advisory | mandatory | advisory |" in table


def test_a_measured_table_shows_each_figures_runs_and_bound(tmp_path):
    from bizosaas_redis_ops import results
    from bizosaas_redis_ops.docs import measured_table

    figures = [
        results.figure("kill: pause", [1.2, 0.9, 1.5], bound=2.5, bound_from="measured"),
        results.figure("kill: writes lost", [0.0, 0.0, 0.0], "writes", bound=0, bound_from="AOF everysec"),
    ]
    results.write(tmp_path / "results", results.document("example", "a writer throughout", figures, "abc1234"))
    table = measured_table(tmp_path, "example").splitlines()
    assert table[2] == "| kill: pause | 3 | 0.90 s | 1.20 s | 1.50 s | 2.50 s (set from measured runs) |"
    assert table[3] == "| kill: writes lost | 3 | 0 | 0 | 0 | 0 (AOF everysec) |"
    assert table[-1].startswith("Measured at commit `abc1234` on ") and "(`results/example.json`)" in table[-1]


def test_every_relative_link_in_the_documents_reaches_a_file_and_its_heading():
    import re

    link = re.compile(r"\]\((?!https?://|#)([^)\s]+)\)")
    broken = []
    for document in docs.documents(ROOT):
        for target in link.findall(document.read_text()):
            path, _, anchor = target.partition("#")
            reached = (document.parent / path).resolve()
            if not reached.exists():
                broken.append(f"{document.relative_to(ROOT)} -> {target}")
            elif anchor and reached.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", reached.read_text(), re.MULTILINE)
                slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}
                if anchor not in slugs:
                    broken.append(f"{document.relative_to(ROOT)} -> {target} (no such heading)")
    assert broken == []
