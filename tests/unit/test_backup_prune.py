"""Pruning keeps the newest N backups of each kind, plain and encrypted, per instance."""

from __future__ import annotations

from pathlib import Path

from bizosaas_redis_ops.data.backup import prune


def test_the_newest_of_each_kind_stay_and_other_instances_are_untouched(tmp_path: Path) -> None:
    stamps = [f"20261201T00000{i}.000Z" for i in range(5)]
    for stamp in stamps:
        for name in (f"production-{stamp}.rdb", f"production-durable-{stamp}.rdb"):
            (tmp_path / name).write_bytes(b"REDIS")
            (tmp_path / f"{name}.sha256").write_text("x")
            (tmp_path / f"{name}.age").write_bytes(b"age")
    (tmp_path / "production-notes.txt").write_text("not a backup")
    removed = prune(tmp_path, "production", keep=2)
    assert len(removed) == 6
    left = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("production-2"))
    newest = stamps[-2:]
    assert left == sorted(
        [f"production-{s}.rdb" for s in newest]
        + [f"production-{s}.rdb.sha256" for s in newest]
        + [f"production-{s}.rdb.age" for s in newest]
    )
    assert len(list(tmp_path.glob("production-durable-*.rdb.age"))) == 5, "another instance's files stay"
    assert (tmp_path / "production-notes.txt").exists()
