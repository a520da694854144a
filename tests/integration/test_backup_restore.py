"""Backup and restore on a stack deployed with `bizosaas-redis up`: every key, value and TTL comes back."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import redis

from bizosaas_redis_ops.data import backup
from bizosaas_redis_ops.deploy import outputs
from conftest import TEST_PREFIX, admin_client, cli, own_names
from dataset import snapshot, write_every_type

STACK = "staging"


def _write_every_type() -> None:
    for db in (0, 1, 2):
        write_every_type(admin_client(STACK, db=db), f"bk:{db}")


def _snapshot() -> dict:
    """(db, key) -> (type, value, PTTL) of every bk:* key."""
    return {
        (db, key): found
        for db in (0, 1, 2)
        for key, found in snapshot(admin_client(STACK, db=db, decode=False), f"bk:{db}").items()
    }


def test_backup_destroy_restore_brings_every_key_back(deployed, engine, offline_image, tmp_path):
    _write_every_type()
    started = time.monotonic()
    before = _snapshot()
    assert len(before) == 3 * (200 * 5 + 3)

    result = cli("backup", "--stack", STACK, "--dest", str(tmp_path))
    backup_file = tmp_path / result.stdout.split()[0].rsplit("/", 1)[1]
    assert backup_file.exists() and (tmp_path / f"{backup_file.name}.sha256").exists()
    # Every session and token is in there: the owner's alone.
    assert tmp_path.stat().st_mode & 0o777 == 0o700
    assert backup_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / f"{backup_file.name}.sha256").stat().st_mode & 0o777 == 0o600

    # Lose everything: the stack destroyed, its retained data volume deleted, a fresh empty deployment.
    deployed[STACK].destroy()
    engine.volumes.get(own_names(STACK)["volumeName"]).remove()
    deployed[STACK].up()
    assert _snapshot() == {}

    result = cli("restore", "--stack", STACK, str(backup_file))
    assert "restored" in result.stdout
    after = _snapshot()
    elapsed_ms = (time.monotonic() - started) * 1000
    assert set(after) == set(before)
    for key, (kind, value, pttl) in before.items():
        assert after[key][:2] == (kind, value), key
        if pttl < 0:
            assert after[key][2] == pttl, key
        else:
            assert pttl - elapsed_ms <= after[key][2] <= pttl, key

    # Written after the restore, it survives a restart: the AOF took over from the backup.
    admin_client(STACK).set("bk:0:after-restore", "1")
    engine.containers.get(f"{TEST_PREFIX}-{STACK}").restart()
    _wait_for_ping()
    assert admin_client(STACK).get("bk:0:after-restore") == "1" and len(_snapshot()) == len(before) + 1


def _wait_for_ping(timeout: float = 30) -> None:
    _wait_for_ping_on(STACK, timeout)


def _wait_for_ping_on(stack: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if admin_client(stack).ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_corrupted_backup_is_refused_before_anything_is_touched(deployed, engine, tmp_path):
    result = cli("backup", "--stack", STACK, "--dest", str(tmp_path))
    good = tmp_path / result.stdout.split()[0].rsplit("/", 1)[1]
    container_id = engine.containers.get(f"{TEST_PREFIX}-{STACK}").id
    admin_client(STACK).set("bk:canary", "still-here")

    flipped = tmp_path / "flipped.rdb"
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    (tmp_path / "flipped.rdb.sha256").write_text((tmp_path / f"{good.name}.sha256").read_text())
    result = cli("restore", "--stack", STACK, str(flipped), check=False)
    assert result.returncode == 1 and "is corrupted: SHA-256" in result.stderr

    # A truncated file whose checksum was recomputed still fails redis-check-rdb.
    import hashlib

    truncated = tmp_path / "truncated.rdb"
    truncated.write_bytes(good.read_bytes()[:-20])
    (tmp_path / "truncated.rdb.sha256").write_text(hashlib.sha256(truncated.read_bytes()).hexdigest() + "\n")
    result = cli("restore", "--stack", STACK, str(truncated), check=False)
    assert result.returncode == 1 and "fails redis-check-rdb" in result.stderr

    result = cli("restore", "--stack", STACK, str(tmp_path / "missing.rdb"), check=False)
    assert result.returncode == 2 and "Error: Invalid value for 'FILE': File" in result.stderr
    assert "missing.rdb' does not exist." in result.stderr

    container = engine.containers.get(f"{TEST_PREFIX}-{STACK}")
    assert container.id == container_id and container.status == "running"
    assert admin_client(STACK).get("bk:canary") == "still-here"


def test_restore_over_running_production_needs_yes(deployed, engine, tmp_path):
    result = cli("backup", "--stack", "production", "--dest", str(tmp_path))
    backup_file = result.stdout.split()[0]
    before = engine.containers.get(f"{TEST_PREFIX}-production").attrs["State"]["StartedAt"]
    result = cli("restore", "--stack", "production", backup_file, check=False)
    assert result.returncode == 1 and "--yes" in result.stderr
    assert engine.containers.get(f"{TEST_PREFIX}-production").attrs["State"]["StartedAt"] == before
    result = cli("restore", "--stack", "production", backup_file, "--yes")
    assert engine.containers.get(f"{TEST_PREFIX}-production").attrs["State"]["StartedAt"] != before


def test_backups_are_pruned_to_keep(deployed, tmp_path):
    for _ in range(3):
        cli("backup", "--stack", "dev", "--dest", str(tmp_path), "--keep", "2")
    assert len(list(tmp_path.glob("dev-*.rdb"))) == 2 and len(list(tmp_path.glob("dev-*.rdb.sha256"))) == 2


def test_backup_of_a_stopped_container_is_one_line(deployed, engine):
    engine.containers.get(f"{TEST_PREFIX}-dev").stop()
    try:
        result = cli("backup", "--stack", "dev", check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("bizosaas-redis backup: Redis refused: Error 111 connecting to 127.0.0.1:")
    finally:
        engine.containers.get(f"{TEST_PREFIX}-dev").start()
        _wait_for_ping_on("dev")


def test_a_restore_that_fails_half_way_leaves_redis_running_on_its_data(deployed, engine, tmp_path, monkeypatch):
    made = Path(cli("backup", "--stack", STACK, "--dest", str(tmp_path)).stdout.split()[0])
    admin_client(STACK).set("bk:0:before-failed-restore", "kept")
    # Placing fails after the current data went aside: the worst moment.
    monkeypatch.setattr(backup, "_place_command", lambda aof: "false")
    with pytest.raises(backup.BackupError) as caught:
        with deployed[STACK].active():
            settings = outputs.settings(STACK)
        backup.restore(engine, settings, made)
    assert str(caught.value) == "restore failed: placing the backup failed; the previous data is back in place"
    assert engine.containers.get(f"{TEST_PREFIX}-{STACK}").status == "running"
    assert admin_client(STACK).get("bk:0:before-failed-restore") == "kept"


def test_a_split_stacks_durable_instance_is_backed_up_and_restored_on_its_own(deployed, tmp_path):
    """Production splits: its queues live on the durable instance, backed up apart from the cache."""
    with deployed["production"].active():
        durable_url = outputs.load("production", "durable")["redis_admin_url"]
    durable = redis.Redis.from_url(durable_url.rsplit("/", 1)[0] + "/1")
    durable.rpush("bk:queue", *range(100))
    cached = cli("backup", "--stack", "production", "--dest", str(tmp_path), "--keep", "1")
    made = cli("backup", "--stack", "production", "--instance", "durable", "--dest", str(tmp_path), "--keep", "1")
    durable_file = Path(made.stdout.split()[0])
    assert durable_file.name.startswith("production-durable-")
    # --keep counts each instance's backups apart: the cache's one survives the durable's pruning.
    assert Path(cached.stdout.split()[0]).exists() and durable_file.exists()

    durable.delete("bk:queue")
    result = cli("restore", "--stack", "production", "--instance", "durable", str(durable_file), "--yes")
    assert "bizosaas-test-production-durable" in result.stdout
    _wait_until(lambda: durable.llen("bk:queue") == 100)
    durable.delete("bk:queue")


def _wait_until(condition, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if condition():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("not within the time allowed")
        time.sleep(0.1)
