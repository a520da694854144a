"""doctor's checks that read host configuration, fed the configuration directly."""

from __future__ import annotations

import pytest

from bizosaas_redis_ops.deploy.doctor import userland_proxy_check


@pytest.mark.parametrize(
    ("daemon_json", "cmdline", "socket", "status", "says"),
    [
        (None, "dockerd", False, "WARN", 'set "userland-proxy": false'),
        ('{"log-driver": "json-file"}', "dockerd", False, "WARN", "about 0.3 ×"),
        ('{"userland-proxy": false}', "dockerd", False, "OK", "through the kernel"),
        (None, "dockerd --userland-proxy=false", False, "OK", "through the kernel"),
        ('{"userland-proxy": true}', "dockerd", True, "OK", "use the unix socket"),
        ("{not json", "dockerd", False, "WARN", "is not valid JSON"),
    ],
)
def test_userland_proxy(daemon_json, cmdline, socket, status, says):
    check = userland_proxy_check(daemon_json, cmdline, socket)
    assert check.status == status and says in check.detail
