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


# The steps that guard running data (README, "Absence and refusal"), and the few places in
# them that may pass over an error, each with its reason.
GUARDS = [
    "src/bizosaas_redis/handover.py",
    "src/bizosaas_redis_ops/deploy/preflight.py",
    "src/bizosaas_redis_ops/deploy/outputs.py",
    "src/bizosaas_redis_ops/deploy/docker_engine.py",
    "src/bizosaas_redis_ops/data/layout_move.py",
    "src/bizosaas_redis_ops/data/backup.py",
    "src/bizosaas_redis_ops/deploy/adopt.py",
    "src/bizosaas_redis_pulumi/components/sentinel_cluster.py",
]
PASSES_OVER = {
    "_streaming": "polled in wait_for_the_others, whose deadline stops the step",
    "_replicas_seen": "polled in move_primary_away's bounded loop, whose deadline stops the step",
    "_reports": "a Sentinel that does not answer is not waited for; the others are",
    "_role": "polled while a failover is under way, within its deadline",
    "_follow": "speeds up what Sentinel does anyway a second later",
    "_fail_over": "CLIENT UNPAUSE: the pause ends by itself after ATTEMPT seconds",
    "_set_aside": "a replica not set aside may be promoted: the role moves twice, nothing is lost",
    "free_port": "a port that cannot be bound is taken: the next one is tried",
}
# Errors that mean "it is not there", which a guard may take as nothing to protect.
ABSENCE = {"docker.errors.NotFound", "docker.errors.ImageNotFound"}
# Reports that must list a failure, not crash on it: the only `except Exception` allowed.
REPORTS = {"src/bizosaas_redis_ops/check/smoke.py", "src/bizosaas_redis_ops/check/scenarios.py"}


def _passes_over(handler: ast.ExceptHandler) -> bool:
    """The handler drops the error: pass, continue, or a return of nothing, 0, False or empty."""
    empty = (None, 0, False, "")

    def dropped(statement: ast.stmt) -> bool:
        if isinstance(statement, ast.Pass | ast.Continue):
            return True
        if not isinstance(statement, ast.Return):
            return False
        value = statement.value
        return (
            value is None
            or (isinstance(value, ast.Constant) and value.value in empty)
            or (isinstance(value, ast.List | ast.Set | ast.Dict | ast.Tuple) and not getattr(value, "elts", None))
            or (isinstance(value, ast.Call) and ast.unparse(value) in ("set()", "dict()", "list()"))
        )

    return all(dropped(statement) for statement in handler.body) and "is_absent" not in ast.unparse(handler)


def test_guards_tell_absence_from_refusal() -> None:
    found = []
    for name in GUARDS:
        tree = ast.parse((ROOT / name).read_text())
        for function in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)):
            for node in ast.walk(function):
                swallowed = isinstance(node, ast.ExceptHandler) and _passes_over(node)
                suppressed = (
                    isinstance(node, ast.Call)
                    and ast.unparse(node.func).endswith("suppress")
                    and not {ast.unparse(a) for a in node.args} <= ABSENCE
                )
                if (swallowed or suppressed) and function.name not in PASSES_OVER:
                    found.append(f"{name}:{node.lineno} in {function.name}: an error passed over")
    for path in (ROOT / "src").rglob("*.py"):
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text())):
            broad = isinstance(node, ast.ExceptHandler) and (node.type is None or ast.unparse(node.type) == "Exception")
            if broad and where not in REPORTS and "cli/root.py" not in where:
                found.append(f"{where}:{node.lineno}: except Exception; name the errors you expect")
    assert found == [], "\n".join(found)
