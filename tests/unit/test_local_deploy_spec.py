"""The local deployer's translation of provider inputs into Docker API arguments."""

from __future__ import annotations

import io
import tarfile

import pytest

from bizosaas_redis_ops import capture, local_apply


@pytest.fixture(scope="module")
def declared():
    return capture.run_program("staging").one(local_apply.CONTAINER).inputs


def test_every_declared_input_is_applied(declared):
    spec = local_apply.container_spec(declared)
    assert spec.create["name"] == "bizosaas-redis-staging"
    assert spec.create["user"] == "999:1000"
    assert spec.create["healthcheck"]["interval"] == 10 * 10**9 and spec.create["healthcheck"]["retries"] == 5
    assert spec.host_config["port_bindings"] == {"6379/tcp": ("0.0.0.0", 6380)}
    assert spec.host_config["read_only"] is True and spec.host_config["cap_drop"] == ["ALL"]
    assert spec.host_config["security_opt"] == ["no-new-privileges:true"]
    assert spec.host_config["mem_limit"] == "4096m" and spec.host_config["restart_policy"] == {"Name": "unless-stopped"}
    assert (
        spec.host_config["mounts"][0]["Target"] == "/data" and spec.host_config["mounts"][0]["Source"] == "redis_data"
    )
    assert spec.networks == [{"name": "dokploy-network", "aliases": ["redis-staging"]}]
    assert spec.wait and spec.must_run


def test_uploads_keep_owner_and_mode(declared):
    directory, archive = local_apply.container_spec(declared).uploads[0]
    assert directory == "/data"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        member = tar.getmembers()[0]
    assert (member.name, member.uid, member.gid, member.mode) == ("redis.conf", 999, 1000, 0o600)


def test_an_input_the_deployer_cannot_apply_is_named(declared):
    with pytest.raises(local_apply.LocalApplyError, match="cannot apply: devices, privileged"):
        local_apply.container_spec({**declared, "privileged": True, "devices": []})


def test_spec_digest_changes_with_any_input(declared):
    base = local_apply.spec_digest(declared, "sha256:1")
    assert base == local_apply.spec_digest(dict(declared), "sha256:1")
    assert base != local_apply.spec_digest({**declared, "restart": "always"}, "sha256:1")
    assert base != local_apply.spec_digest(declared, "sha256:2")


def test_the_exporter_sidecar_is_refused_with_a_reason(monkeypatch):
    values = {**local_apply.read_stack_config(local_apply.stack_file("staging")), "exporterEnabled": True}
    monkeypatch.setattr(local_apply, "stack_values", lambda *a, **k: values)
    monkeypatch.setattr(local_apply, "ensure_engine", lambda: None)
    with pytest.raises(local_apply.LocalApplyError, match=r"exporterEnabled.*pulumi up"):
        local_apply.up("staging", client=object())
