"""No change loses data: each change path runs while a writer issues acknowledged writes.

One deployment of the staging stack file (AOF everysec, RDB rules) under its own test
names walks through the changes in turn. After each, every key of a dataset of every
type (with TTLs) and every acknowledged write must be there; the longest pause between
two acknowledged writes is the unavailability window. The table is printed.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Iterator

import docker
import pytest

from bizosaas_redis.settings import load_stack_file
from bizosaas_redis_ops import results
from bizosaas_redis_ops.check import smoke
from conftest import TEST_EXTERNAL_NETWORK, TEST_PREFIX, free_port
from dataset import differences, snapshot, write_every_type
from harness import Deployment, Writer, write_results

STACK = "staging"
NAMES = {
    "containerName": f"{TEST_PREFIX}-safety",
    "volumeName": f"{TEST_PREFIX}-safety-data",
    "networkName": TEST_EXTERNAL_NETWORK,
}


RESULTS: list[tuple[str, int, int, int, float]] = []
FIGURES: list[dict[str, object]] = []  # the same runs, for results/change-paths.json
# The longest pause in writes a change may cause, by what it does to the container: each the
# worst run measured (results/change-paths.json) times results.BOUND_FACTOR, or plus
# BOUND_MARGIN_S when more; tests/unit/test_bounds.py holds them to the measurements.
PAUSE_BOUND = {"replaced": 2.9, "updated": 1.0, None: 1.0}
# Settings applied without a restart (settings.online_directives), changed at once.
ONLINE_CHANGE = ("maxclients=900", "timeout=30", "loglevel=verbose")
# Staging's denied commands and one more: a change of the application user's rules.
DENIED = [*load_stack_file("staging").denied_commands, "RANDOMKEY"]


@pytest.fixture(scope="module")
def safety(engine, offline_image) -> Iterator[Deployment]:
    deployment = Deployment(STACK, NAMES, offline_image, ["appendonly=false"])
    deployment.up()
    yield deployment
    deployment.close(engine)
    write_results("change-paths", "staging stack file under test names, 1 s healthcheck, a writer throughout", FIGURES)
    with contextlib.suppress(docker.errors.ImageNotFound):
        engine.images.remove(f"{offline_image}-retagged")


def _change(
    deployment: Deployment, label: str, *changes: str, port: int | None = None, expect: str | None = "replaced"
) -> str:
    """Apply one change under a writer; assert nothing was lost; record the measurement.
    `expect`: what Pulumi does to the container (replaced, updated in place, None: nothing)."""
    prefix = f"ds:{len(RESULTS)}"
    keys = write_every_type(deployment.admin(), prefix, count=100)
    before = snapshot(deployment.admin(), prefix)
    started = time.monotonic()
    writer = Writer(smoke.with_db(deployment.outputs()["redis_admin_url"], 0), deployment.port)
    with writer:
        writer.port = port or deployment.port
        output = deployment.up(*changes, port=port)
    after = snapshot(deployment.admin(), prefix)
    problems = differences(before, after, (time.monotonic() - started) * 1000)
    client = deployment.admin()
    pipe = client.pipeline(transaction=False)
    for n in writer.acked:
        pipe.exists(f"w:{n}")
    missing = [n for n, there in zip(writer.acked, pipe.execute(), strict=True) if not there]
    client.delete(*[f"w:{n}" for n in writer.acked] or ["w:none"])
    RESULTS.append((label, keys, len(problems), len(missing), writer.longest_gap))
    container = f"container {expect or 'kept'}"
    for what, values, unit, bound, bound_from, group in (
        ("longest pause in writes", [writer.longest_gap], "s", PAUSE_BOUND[expect], "measured", container),
        ("acknowledged writes lost", [float(len(missing))], "writes", 0, "a graceful stop saves (SIGTERM)", label),
    ):
        FIGURES.append(
            results.figure(
                f"{label}: {what}",
                values,
                unit,
                change=label,
                figure=what,
                group=group,
                bound=bound,
                bound_from=bound_from,
            )
        )
    if expect is None:
        assert not re.search(r"Container redis-container (replac|updat|creat|delet)", output), output
    else:
        assert f"redis-container {expect}" in output, output
    assert problems == [], problems[:5]
    assert missing == [], f"{len(missing)} of {len(writer.acked)} acknowledged writes lost"
    assert len(writer.acked) > 20, "the writer did not run"
    assert writer.longest_gap <= PAUSE_BOUND[expect], (
        f"{label}: writes paused {writer.longest_gap:.2f} s, bound {PAUSE_BOUND[expect]} s (container {expect})"
    )
    return output


def test_every_change_path_keeps_every_key_and_every_acknowledged_write(safety, capsys):
    _change(safety, "AOF off -> on", "appendonly=true")
    assert safety.admin().config_get("appendonly") == {"appendonly": "yes"}
    _change(safety, "AOF on -> off", "appendonly=false")
    _change(safety, "AOF off -> on again (stale AOF kept aside)", "appendonly=true")
    _change(safety, "RDB rules changed (online)", 'save=["60 1", "300 10"]', expect=None)
    assert safety.admin().config_get("save") == {"save": "60 1 300 10"}
    _change(safety, "published port changed", port=free_port())
    _change(safety, "memory limit changed (updated in place)", "memoryLimit=5gb", expect="updated")
    # Settings Redis applies while it runs: set on the running server, the container kept.
    _change(safety, "online settings changed (maxclients, timeout, loglevel)", *ONLINE_CHANGE, expect=None)
    assert safety.admin().config_get("maxclients") == {"maxclients": "900"}
    # The ACL users (users.acl), set with ACL SETUSER: the container kept.
    _change(safety, "ACL users changed (a denied command; online)", f"deniedCommands={json.dumps(DENIED)}", expect=None)
    assert "-randomkey" in safety.admin().acl_getuser(load_stack_file("staging").app_username)["commands"]
    # Another tag of the same image: Pulumi replaces the image resource, not the container.
    retagged = _retagged(safety.sandbox.overrides["image"])
    _change(safety, "image tag changed (same image: container kept)", f"image={retagged}", expect=None)
    _change(safety, "RDB and AOF off, keys only in memory", "save=[]", "appendonly=false")
    _change(safety, "... then replaced (port)", port=free_port())
    with capsys.disabled():
        print("\n" + _table())


def test_maxmemory_below_the_data_is_refused_or_announced_before_anything_changes(safety, engine):
    client = safety.admin()
    pipe = client.pipeline(transaction=False)
    for i in range(3000):
        pipe.set(f"big:{i}", "x" * 1000)
    pipe.execute()
    before = engine.containers.get(NAMES["containerName"]).id
    # Under noeviction every write would be refused: refused, nothing changed.
    refused = safety.sandbox.attempt("maxmemoryPolicy=noeviction", "maxmemory=1mb")
    assert refused.returncode == 1
    assert refused.stderr.startswith("bizosaas-redis up: redis:maxmemory = 1.0mb is below the ")
    assert "in use under maxmemory-policy noeviction: writes would be refused" in refused.stderr
    assert engine.containers.get(NAMES["containerName"]).id == before
    # On an allkeys-lru cache it is what the policy is for: announced, applied, evicting.
    safety.sandbox.overrides.pop("memoryLimit", None)  # the limit follows maxmemory down (5gb before)
    output = safety.up("maxmemory=2mb")
    assert "note: redis:maxmemory = 2.0mb is below the " in output and "allkeys-lru will evict about" in output
    # Applied online: maxmemory lowered before the container's memory limit, the container kept.
    assert f"{NAMES['containerName']}: maxmemory lowered to 2mb before its memory limit" in output, output[-3000:]
    assert engine.containers.get(NAMES["containerName"]).id == before
    client = safety.admin()
    client.set("after", "1")
    assert client.info("stats")["evicted_keys"] > 0


def _retagged(image: str) -> str:
    tag = f"{image}-retagged"
    docker.from_env().images.get(image).tag(tag)
    return tag


def _table() -> str:
    from bizosaas_redis_ops import tables

    return tables.render(
        ["change (staging stack file, writer running)", "keys", "keys lost", "acked writes lost", "longest pause"],
        [[label, keys, lost, missing, f"{gap:.2f} s"] for label, keys, lost, missing, gap in RESULTS],
    )
