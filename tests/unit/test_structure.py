"""The structure the README's layout table promises, kept: a core free of Pulumi, no path
tricks, functions short enough to read."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [ROOT / "src", ROOT / "consumer" / "src", ROOT / "policies"]
LONGEST_FUNCTION = 60


def _python_files() -> list[Path]:
    return [p for folder in SOURCES for p in folder.rglob("*.py") if "venv" not in p.parts]


def test_the_core_imports_no_pulumi() -> None:
    """Settings, rendering, topology and connection load where Pulumi is not installed."""
    script = """
import importlib, pkgutil, sys
import bizosaas_redis
for module in pkgutil.walk_packages(bizosaas_redis.__path__, "bizosaas_redis."):
    importlib.import_module(module.name)
print(sorted(name for name in sys.modules if name.split(".")[0] in ("pulumi", "pulumi_docker", "pulumi_random")))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_no_sys_path_edits_and_no_long_functions() -> None:
    found = []
    for path in _python_files():
        where = path.relative_to(ROOT)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr == "path" and getattr(node.value, "id", "") == "sys":
                found.append(f"{where}:{node.lineno}: sys.path used; declare the import instead")
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "src" in path.parts:
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length >= LONGEST_FUNCTION:
                    found.append(f"{where}:{node.lineno}: {node.name} has {length} lines")
    assert not found, "\n".join(found)
