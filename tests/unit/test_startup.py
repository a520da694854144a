"""The container's start script is valid POSIX shell for both flavours."""

from __future__ import annotations

import subprocess

import pytest

from bizosaas_redis import startup


@pytest.mark.parametrize("flavour", ["redis", "valkey"])
def test_start_script_parses_as_posix_shell(flavour):
    script = startup.render(flavour)
    checked = subprocess.run(["sh", "-n"], input=script, capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    assert script.rstrip().endswith(f"exec {flavour}-server /data/redis.conf")
    # The switch-off path starts the flavour's own server, without a port.
    assert f"    {flavour}-server /data/redis.conf --appendonly yes --port 0 --tls-port 0" in script
