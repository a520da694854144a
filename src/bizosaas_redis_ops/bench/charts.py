"""PNG charts of the benchmarks (matplotlib, drawn without a display)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bizosaas_redis_ops.bench.runner import BenchmarkError

if TYPE_CHECKING:
    from bizosaas_redis_ops.bench.growth import Growth
    from bizosaas_redis_ops.bench.paths import Row


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BenchmarkError("charts need matplotlib: pip install 'bizosaas-redis[bench]'") from None
    return plt


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def paths_chart(rows: list[Row], path: Path) -> Path:
    """Requests/s as a ratio to the limit, per target and path, at each pipeline depth."""
    from bizosaas_redis_ops.bench.paths import PIPELINES, summary

    plt = _pyplot()
    found = summary(rows)
    keys = list(dict.fromkeys((t, p) for t, p, _ in found))
    fig, ax = plt.subplots(figsize=(10, 6))
    height = 0.8 / len(PIPELINES)
    for i, pipeline in enumerate(PIPELINES):
        ax.barh(
            [k + i * height for k in range(len(keys))],
            [found[(t, p, pipeline)] for t, p in keys],
            height,
            label=f"pipeline {pipeline}",
        )
    ax.axvline(0.9, color="grey", linestyle="--", linewidth=1, label="goal: 0.9 × limit")
    ax.set_yticks([k + height * (len(PIPELINES) - 1) / 2 for k in range(len(keys))])
    ax.set_yticklabels([f"{t} — {p}" for t, p in keys], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("requests/s ÷ the limit's (geometric mean over 9 commands)")
    ax.set_title("Consumer paths against a bare server on loopback (same image, same run)")
    ax.legend(fontsize=8)
    return _save(plt, fig, path)


def _label(axes: Any, unit: str, title: str) -> None:
    axes.set_xlabel("dataset (used_memory, MB)")
    axes.set_ylabel(unit)
    axes.set_title(title)
    axes.legend(fontsize=8)


def growth_chart(rows: list[Growth], path: Path) -> Path:
    """Times and peak memory against the dataset size."""
    plt = _pyplot()
    sizes = [g.used_mb for g in rows]
    fig, (times, memory) = plt.subplots(1, 2, figsize=(12, 5))
    for label, values in (
        ("disk-rate load (physical limit)", [g.load_at_disk_rate_s for g in rows]),
        ("Redis load (its log)", [g.redis_load_s for g in rows]),
        ("restart: first command", [g.first_command_s for g in rows]),
        ("restart: healthy", [g.healthy_s for g in rows]),
        ("replacement: clients waited", [g.replace_window_s for g in rows]),
        ("AOF rewrite", [g.rewrite_s for g in rows]),
    ):
        times.plot(sizes, values, marker="o", label=label)
    _label(times, "seconds", "Time against dataset size")
    memory.plot(sizes, [g.peak_rss_mb for g in rows], marker="o", label="peak RSS during the rewrite")
    memory.plot(sizes, [g.limit_mb for g in rows], linestyle="--", label="container memory limit")
    memory.plot(sizes, sizes, linestyle=":", label="dataset")
    _label(memory, "MB", "Memory during an AOF rewrite under writes")
    return _save(plt, fig, path)
