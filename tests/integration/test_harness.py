"""The writer the fault and change tests measure with cannot report better than the truth:
an outage still running when it stops counts in full and fails the block."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from harness import CountingWriter


class LocalWriter(CountingWriter):
    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def connect(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=0.3, socket_connect_timeout=0.3, retry=Retry(NoBackoff(), 0))


def test_an_outage_still_running_at_the_end_fails_the_block_and_counts_in_full(start_redis):
    server = start_redis("")
    writer = LocalWriter(server.port)
    try:
        unresumed = r"^writes had not resumed when the writer stopped: \d+ failed"
        with pytest.raises(AssertionError, match=unresumed), writer:
            os.kill(server.proc.pid, signal.SIGSTOP)  # a hung server, not back before the end
            time.sleep(1.0)
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    assert writer.longest_gap >= 1.4, f"the outage ran to the stop (1 s, then the writer's 0.5 s): {writer.longest_gap}"


def test_an_outage_that_ends_is_measured_from_the_last_write_to_the_next(start_redis):
    server = start_redis("")
    with LocalWriter(server.port) as writer:
        os.kill(server.proc.pid, signal.SIGSTOP)
        time.sleep(1.0)
        os.kill(server.proc.pid, signal.SIGCONT)
    assert 1.0 <= writer.longest_gap < 3, writer.longest_gap
    assert writer.failures, "the pause was seen as failed writes"
