"""Run the testinfra suite (tests/infra) against a deployed container; report a table."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass

import pytest

from bizosaas_redis.settings import PROJECT_ROOT

SUITE = PROJECT_ROOT / "tests" / "infra"


@dataclass
class Check:
    name: str
    result: str  # PASS | FAIL | ERROR | SKIP
    detail: str = ""


class _Collector:
    """A pytest plugin that keeps one row per check."""

    def __init__(self) -> None:
        self.checks: list[Check] = []

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        name = report.nodeid.split("::")[-1].removeprefix("test_").replace("_", " ")
        if report.when == "call" or report.outcome != "passed":
            if report.outcome == "passed":
                self.checks.append(Check(name, "PASS"))
            elif report.outcome == "skipped":
                self.checks.append(Check(name, "SKIP", _first_line(report)))
            else:
                self.checks.append(Check(name, "FAIL" if report.when == "call" else "ERROR", _first_line(report)))


def _first_line(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    return text.strip().splitlines()[0][:160] if text.strip() else ""


def run(
    stack: str | None = None, container: str | None = None, outputs_source: str = "auto", quiet: bool = True
) -> tuple[int, list[Check]]:
    args = [str(SUITE), "--confcutdir", str(SUITE), "-p", "no:cacheprovider", "--outputs-source", outputs_source]
    if stack:
        args += ["--stack", stack]
    if container:
        args += ["--container", container]
    args += ["-o", "addopts=", "-q", "--tb=short" if not quiet else "--tb=no"]
    collector = _Collector()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured if quiet else sys.stdout):
        code = pytest.main(args, plugins=[collector])
    if quiet and not collector.checks:
        print(captured.getvalue(), file=sys.stderr)  # it could not even start: say why
    return int(code), collector.checks


def table(checks: list[Check]) -> str:
    width = max((len(c.name) for c in checks), default=5)
    lines = [f"{'check'.ljust(width)}  result  detail", f"{'-' * width}  ------  ------"]
    lines += [f"{c.name.ljust(width)}  {c.result.ljust(6)}  {c.detail}" for c in checks]
    failed = sum(c.result in ("FAIL", "ERROR") for c in checks)
    lines.append(f"{len(checks) - failed} passed, {failed} failed")
    return "\n".join(lines)
