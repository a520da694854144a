"""Run the testinfra checks (bizosaas_redis_ops/check/deployment) against a deployed container; report a table."""

from __future__ import annotations

import contextlib
import io
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis_ops import tables

SUITE = Path(__file__).resolve().parent / "deployment"


class VerifyError(BizosaasRedisError):
    """The checks could not run against the named container."""


@dataclass
class Check:
    name: str
    result: str  # PASS | FAIL | ERROR | SKIP
    detail: str = ""


class _Collector:
    """A pytest plugin that keeps one row per check."""

    def __init__(self) -> None:
        self.checks: list[Check] = []
        self.stopped: str | None = None  # why the checks stopped before they ran (pytest.exit)

    def pytest_keyboard_interrupt(self, excinfo: pytest.ExceptionInfo[BaseException]) -> None:
        self.stopped = str(getattr(excinfo.value, "msg", excinfo.value))

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
    stack: str | None = None,
    container: str | None = None,
    quiet: bool = True,
    junit_xml: Path | None = None,
    instance: str = "cache",
) -> tuple[int, list[Check]]:
    args = [str(SUITE), "--confcutdir", str(SUITE), "-p", "no:cacheprovider"]
    args += ["--instance", instance]
    if stack:
        args += ["--stack", stack]
    if container:
        args += ["--container", container]
    args += ["-o", "addopts=", "-q", "--tb=short" if not quiet else "--tb=no"]
    if junit_xml:
        args += ["--junit-xml", str(junit_xml), "-o", "junit_suite_name=redis-verify"]
    collector = _Collector()
    captured = io.StringIO()
    with (
        contextlib.redirect_stdout(captured if quiet else sys.stdout),
        contextlib.redirect_stderr(captured if quiet else sys.stderr),
    ):
        code = pytest.main(args, plugins=[collector])
    if collector.stopped:
        raise VerifyError(collector.stopped)
    if quiet and not collector.checks:
        print(captured.getvalue(), file=sys.stderr)  # it could not even start: say why
    return int(code), collector.checks


def table(checks: list[Check]) -> str:
    failed = sum(c.result in ("FAIL", "ERROR") for c in checks)
    return tables.render(
        ["check", "result", "detail"],
        [[c.name, c.result, c.detail] for c in checks],
        footer=f"{len(checks) - failed} passed, {failed} failed",
    )
