"""The Celery app of the smoke suite: broker and results in the stack's databases.

Configured from the environment (never the command line, which process lists show):
SMOKE_BROKER_URL, SMOKE_RESULT_URL, SMOKE_PREFIX, SMOKE_QUEUE, and with topology sentinel
SMOKE_TRANSPORT_OPTIONS (the stack's CELERY_BROKER_TRANSPORT_OPTIONS). Every key Celery and
kombu write carries SMOKE_PREFIX (kombu's `global_keyprefix`), so the suite can remove
exactly what it made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from celery import Celery

from bizosaas_redis_patterns import CELERY_FAILOVER_SETTINGS

# On the worker's PYTHONPATH, so that it imports this module as installed or from the tree.
# (the folder that holds the top-level package: as many levels up as the module name has dots)
PACKAGE_PARENT = Path(__file__).resolve().parents[__name__.count(".")]

# Keys kombu's Redis transport writes in the broker database, beside the queue itself.
BROKER_KEYS = (
    "_kombu.binding.{queue}",
    "_kombu.binding_permanent.{queue}",
    "_kombu.binding_deadlines",
    "{queue}",
    "unacked",
    "unacked_index",
    "unacked_mutex",
)


def make_app(
    broker_url: str, result_url: str, prefix: str, queue: str, transport: dict[str, object] | None = None
) -> Celery:
    """`transport`: more transport options (with topology sentinel: master_name, sentinel_kwargs)."""
    app = Celery("bizosaas_smoke", broker=broker_url, backend=result_url)
    options = {"global_keyprefix": prefix, **(transport or {})}
    app.conf.update(
        task_default_queue=queue,
        broker_transport_options=options,
        result_backend_transport_options=options,
        result_expires=300,
        worker_enable_remote_control=False,  # no pidbox keys
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        **CELERY_FAILOVER_SETTINGS,
    )

    @app.task(name="smoke.add")
    def add(x: int, y: int) -> int:
        return x + y

    return app


def broker_keys(prefix: str, queue: str) -> list[str]:
    return [prefix + name.format(queue=queue) for name in BROKER_KEYS]


def result_key(prefix: str, task_id: str) -> str:
    return f"{prefix}celery-task-meta-{task_id}"


@dataclass
class Worker:
    """A running worker and its log (a file: a worker logging into a pipe nobody reads
    stops, blocked on its next line, once the pipe's 64 KiB are full)."""

    process: subprocess.Popen[str]
    log: IO[str]


def start_worker(
    broker_url: str, result_url: str, prefix: str, queue: str, transport: dict[str, object] | None = None
) -> Worker:
    """A real Celery worker (solo pool) on `queue`, configured through its environment."""
    env = {
        **os.environ,
        "SMOKE_BROKER_URL": broker_url,
        "SMOKE_RESULT_URL": result_url,
        "SMOKE_PREFIX": prefix,
        "SMOKE_QUEUE": queue,
        "SMOKE_TRANSPORT_OPTIONS": json.dumps(transport or {}),
        "PYTHONPATH": os.pathsep.join([str(PACKAGE_PARENT), os.environ.get("PYTHONPATH", "")]),
    }
    log = tempfile.TemporaryFile("w+")  # noqa: SIM115 - stop_worker closes it; never on the disk by name
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "celery", "-A", __name__, "worker"),
            *("--pool", "solo", "--concurrency", "1", "-Q", queue),
            *("--without-mingle", "--without-gossip", "--without-heartbeat", "--loglevel", "WARNING"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    return Worker(process, log)


def stop_worker(worker: Worker) -> str:
    """Stops the worker; its log."""
    if worker.process.poll() is None:
        worker.process.terminate()
        try:
            worker.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            worker.process.kill()
    if worker.log.closed:  # stopped before
        return ""
    worker.log.seek(0)
    text = worker.log.read()
    worker.log.close()
    return text


# The worker process (`celery -A bizosaas_redis_ops.check.smoke_celery worker`) builds the app from env.
if "SMOKE_BROKER_URL" in os.environ:
    app = make_app(
        os.environ["SMOKE_BROKER_URL"],
        os.environ["SMOKE_RESULT_URL"],
        os.environ["SMOKE_PREFIX"],
        os.environ["SMOKE_QUEUE"],
        json.loads(os.environ.get("SMOKE_TRANSPORT_OPTIONS") or "{}"),
    )
