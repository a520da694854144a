"""Backup and restore on a locally deployed stack: every key, value and TTL comes back."""

from __future__ import annotations

import time

import redis

from conftest import admin_client, cli

STACK = "staging"


def _write_every_type() -> None:
    for db in (0, 1, 2):
        client = admin_client(STACK, db=db)
        pipe = client.pipeline(transaction=False)
        for i in range(200):
            base = f"bk:{db}:{i}"
            pipe.set(f"{base}:str", f"v{i}", ex=3600 + i if i % 2 else None)
            pipe.hset(f"{base}:hash", mapping={"f": i})
            pipe.rpush(f"{base}:list", "a", "b", i)
            pipe.sadd(f"{base}:set", "x", i)
            pipe.zadd(f"{base}:zset", {"m": i})
            if i % 3 == 0:
                pipe.expire(f"{base}:zset", 7200)
        pipe.xadd(f"bk:{db}:stream", {"event": "created"})
        pipe.pfadd(f"bk:{db}:hll", *[f"u{i}" for i in range(500)])
        pipe.setbit(f"bk:{db}:bits", 4242, 1)
        pipe.execute()


READ = {  # the logical value of each type (DUMP bytes may change with the encoding after a reload)
    b"string": lambda c, k: c.get(k),
    b"hash": lambda c, k: c.hgetall(k),
    b"list": lambda c, k: c.lrange(k, 0, -1),
    b"set": lambda c, k: c.smembers(k),
    b"zset": lambda c, k: c.zrange(k, 0, -1, withscores=True),
    b"stream": lambda c, k: c.xrange(k),
}


def _snapshot() -> dict:
    """(db, key) -> (type, value, PTTL) of every bk:* key."""
    snap = {}
    for db in (0, 1, 2):
        client = admin_client(STACK, db=db, decode=False)
        keys = list(client.scan_iter(match="bk:*", count=1000))
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.type(key)
        kinds = pipe.execute()
        pipe = client.pipeline(transaction=False)
        for key, kind in zip(keys, kinds, strict=True):
            READ[kind](pipe, key)
            pipe.pttl(key)
        replies = pipe.execute()
        for i, (key, kind) in enumerate(zip(keys, kinds, strict=True)):
            value = sorted(replies[2 * i]) if kind == b"set" else replies[2 * i]
            snap[(db, key)] = (kind, value, replies[2 * i + 1])
    return snap


def test_backup_destroy_restore_brings_every_key_back(deployed, engine, offline_image, tmp_path):
    _write_every_type()
    started = time.monotonic()
    before = _snapshot()
    assert len(before) == 3 * (200 * 5 + 3)

    result = cli("backup", "--stack", STACK, "--dest", str(tmp_path))
    backup_file = tmp_path / result.stdout.split()[0].rsplit("/", 1)[1]
    assert backup_file.exists() and (tmp_path / f"{backup_file.name}.sha256").exists()

    # Lose everything: container and data volume gone, a fresh empty deployment.
    cli("local", "down", "--stack", STACK, "--delete-data")
    cli("local", "up", "--stack", STACK, "--image", offline_image, "--port", str(deployed[STACK]))
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
    admin_client(STACK).set("bk:after-restore", "1")
    engine.containers.get(f"bizosaas-redis-{STACK}").restart()
    _wait_for_ping()
    assert admin_client(STACK).get("bk:after-restore") == "1" and len(_snapshot()) == len(before) + 1


def _wait_for_ping(timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if admin_client(STACK).ping():
                return
        except redis.RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def test_a_corrupted_backup_is_refused_before_anything_is_touched(deployed, engine, tmp_path):
    result = cli("backup", "--stack", STACK, "--dest", str(tmp_path))
    good = tmp_path / result.stdout.split()[0].rsplit("/", 1)[1]
    container_id = engine.containers.get(f"bizosaas-redis-{STACK}").id
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

    container = engine.containers.get(f"bizosaas-redis-{STACK}")
    assert container.id == container_id and container.status == "running"
    assert admin_client(STACK).get("bk:canary") == "still-here"


def test_restore_over_running_production_needs_yes(deployed, engine, tmp_path):
    result = cli("backup", "--stack", "production", "--dest", str(tmp_path))
    backup_file = result.stdout.split()[0]
    before = engine.containers.get("bizosaas-redis-production").attrs["State"]["StartedAt"]
    result = cli("restore", "--stack", "production", backup_file, check=False)
    assert result.returncode == 1 and "--yes" in result.stderr
    assert engine.containers.get("bizosaas-redis-production").attrs["State"]["StartedAt"] == before
    result = cli("restore", "--stack", "production", backup_file, "--yes")
    assert engine.containers.get("bizosaas-redis-production").attrs["State"]["StartedAt"] != before


def test_backups_are_pruned_to_keep(deployed, tmp_path):
    for _ in range(3):
        cli("backup", "--stack", "dev", "--dest", str(tmp_path), "--keep", "2")
    assert len(list(tmp_path.glob("dev-*.rdb"))) == 2 and len(list(tmp_path.glob("dev-*.rdb.sha256"))) == 2


def test_backup_of_a_stopped_container_is_one_line(deployed, engine):
    engine.containers.get("bizosaas-redis-dev").stop()
    try:
        result = cli("backup", "--stack", "dev", check=False)
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert result.stderr.startswith("bizosaas-redis backup: Redis refused: Error 111 connecting to 127.0.0.1:")
    finally:
        engine.containers.get("bizosaas-redis-dev").start()
        cli(
            "local",
            "up",
            "--stack",
            "dev",
            "--image",
            "localhost/redis-offline:7.0",
            "--port",
            str(deployed["dev"]),
        )
