"""The smoke suite's reports: each error explained in one line without its secret, the table
and the JUnit XML a pipeline reads. (The consumer library's own tests are in consumer/tests.)"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
import redis

from bizosaas_redis_ops.check import smoke


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (redis.AuthenticationError("invalid username-password pair"), "authentication failed at h:1"),
        (redis.ReadOnlyError("READONLY You can't write against a read only replica."), "is a read-only replica"),
        (redis.OutOfMemoryError("OOM command not allowed"), "is out of memory"),
        (redis.ConnectionError("Error 111 connecting to h:1. Connection refused."), "connection refused"),
        (redis.ConnectionError("Connection closed by server."), "TLS mismatch?"),
        (redis.TimeoutError("Timeout connecting to server"), "timed out"),
    ],
)
def test_errors_are_explained_in_one_line(exc, expected):
    line = smoke.explain(exc, smoke.Target(url="redis://u:secret@h:1/0"))
    assert expected in line and "\n" not in line and "secret" not in line


def test_report_formats():
    results = [smoke.Result("a", True, 0.01), smoke.Result("b", False, 0.02, "boom")]
    text = smoke.table(results)
    assert text.splitlines()[-1] == "1 passed, 1 failed" and "FAIL" in text and "boom" in text
    suite = ET.fromstring(smoke.junit_xml(results))
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.find("testcase[@name='b']/failure").get("message") == "boom"
