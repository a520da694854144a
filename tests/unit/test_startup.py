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


def test_a_sentinel_script_touches_no_server_file():
    """Only a server's script edits redis.conf (the `save` lines CONFIG REWRITE appended):
    a Sentinel's volume has none, and `set -e` would stop it at start."""
    script = startup.render_sentinel("redis", startup.Discovery("m", [("10.0.0.1", 26380)]), 2)
    assert "/data/redis.conf" not in script
    assert "sed -i '/^save /d' /data/redis.conf" in startup.render("redis")
