"""The example CI pipeline is a valid GitHub workflow and does what the README says."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from conftest import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "redis-infra.yml"


def validate(path: Path) -> subprocess.CompletedProcess:
    # check-jsonschema ships GitHub's workflow schema: no network needed.
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_workflow_matches_the_github_schema():
    result = validate(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_catches_a_broken_workflow(tmp_path):
    broken = yaml.safe_load(WORKFLOW.read_text())
    broken["jobs"]["test"]["runs-on"] = {"group": 5, "labels": [{"not": "a label"}]}
    broken["jobs"]["test"]["timeout-minutes"] = "soon"
    path = tmp_path / "broken.yml"
    path.write_text(yaml.safe_dump(broken))
    result = validate(path)
    # The tool's own verdict, not just a non-zero exit (a missing tool exits non-zero too).
    assert result.returncode == 1
    assert "Schema validation errors were encountered." in result.stdout
    assert "['runs-on'].labels[0]: {'not': 'a label'} is not of type 'string'" in result.stdout


def test_pipeline_previews_with_the_policy_pack_and_verifies_after_up():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    test_steps = " ".join(str(step.get("run", "")) for step in jobs["test"]["steps"])
    assert "scripts/test" in test_steps
    preview = next(s for s in jobs["preview"]["steps"] if s.get("uses", "").startswith("pulumi/actions"))
    assert preview["with"]["command"] == "preview" and preview["with"]["policyPacks"] == "policies"
    assert preview["with"]["comment-on-pr"] is True
    assert jobs["preview"]["strategy"]["matrix"]["stack"] == ["dev", "staging", "production"]
    deploy_runs = " ".join(str(step.get("run", "")) for step in jobs["deploy"]["steps"])
    assert "bizosaas-redis up" in deploy_runs and "--no-verify" not in deploy_runs
    assert "bizosaas-redis smoke" in deploy_runs and "--junit" in deploy_runs
    assert jobs["deploy"]["strategy"]["matrix"]["stack"] == ["staging", "production"]
