"""The README's generated tables are current and cover every setting and rule."""

from __future__ import annotations

import re

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


def test_a_grid_table_places_each_figure_by_its_row_and_column(tmp_path):
    from bizosaas_redis_ops import results
    from bizosaas_redis_ops.docs import grid_table

    figures = [
        results.figure("a: × limit, P1", [0.8, 0.9, 0.85], "×", row="a via network", column="× limit, P1"),
        results.figure("b: × limit, P16", [1.0], "×", row="b via socket", column="× limit, P16"),
    ]
    results.write(tmp_path / "results", results.document("grid", "three runs", figures, "abc1234"))
    table = grid_table(tmp_path, "grid").splitlines()
    assert table[:4] == [
        "|  | × limit, P1 | × limit, P16 |",
        "|---|---|---|",
        "| a via network | 0.85 (0.80–0.90) |  |",
        "| b via socket |  | 1.00 |",
    ]
    assert table[-1].startswith("Measured at commit `abc1234` on ")


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


# What a measured figure looks like in prose: 1.6 s, 22.5 MB, 1.8 ×, 603 of 879, 2.5-3.5 s.
FIGURE = re.compile(
    r"(?<![\w.])\d+(?:\.\d+)?[–-]\d+(?:\.\d+)? ?(?:s|ms|MB)\b"  # a range: 2.5-3.5 s
    r"|(?<![\w.])\d+\.\d+ ?(?:s|ms|MB|GB|GiB|×|%)(?!\w)"  # a measured amount: 1.6 s, 1.8 ×
    r"|(?<![\w.])\d[\d ]* of \d[\d ]*\b"  # a count: 603 of 879
)
GENERATED = re.compile(r"<!-- (\S+):start.*?<!-- \1:end -->", re.DOTALL)
FENCED = re.compile(r"^```.*?^```", re.DOTALL | re.MULTILINE)


def figures_typed_in(text: str) -> list[str]:
    return FIGURE.findall(FENCED.sub("", GENERATED.sub("", text)))


def test_a_figure_appears_only_in_a_generated_block():
    typed = {}
    for document in docs.documents(ROOT):
        name = str(document.relative_to(ROOT))
        if found := figures_typed_in(document.read_text()):
            typed[name] = found
    for name, field in Settings.model_fields.items():
        if found := figures_typed_in(field.description or ""):
            typed[f"setting {name}"] = found
    assert typed == {}, "measured figures belong in results files, rendered by bizosaas-redis docs"


def test_the_figure_check_sees_a_typed_figure_and_not_a_generated_one():
    block = "<!-- x:start (generated) -->\n| pause | 1.20 s |\n<!-- x:end -->"
    assert figures_typed_in(f"the suite takes 1.6–1.7 s here\n{block}") == ["1.6–1.7 s"]
    assert figures_typed_in(f"a run lost 321 of 647 writes; {block}") == ["321 of 647 "]
    assert figures_typed_in(block + "\n```sh\nsleep 0.5 s\n```\nkeep 30 s, port 6379") == []
