"""The Pulumi program under Pulumi's mock runtime: what each stack declares."""

from __future__ import annotations

import json

import pytest

from bizosaas_redis import redis_conf
from bizosaas_redis.settings import (
    DEFAULT_DENIED_COMMANDS,
    available_stacks,
    instances,
    load_stack_file,
    read_stack_config,
    stack_file,
)
from bizosaas_redis_pulumi.components.files import NAME_SUFFIX, ONLINE_SUFFIX
from capture import ONLINE_SETTINGS, is_secret, label_dict, run_program, unwrap

CONTAINER = "docker:index/container:Container"
IMAGE = "docker:index/remoteImage:RemoteImage"
NETWORK = "docker:index/network:Network"
VOLUME = "docker:index/volume:Volume"
GET_NETWORK = "docker:index/getNetwork:getNetwork"


@pytest.fixture(scope="module")
def captures():
    passwords: dict[str, dict[str, str]] = {}
    result = {}
    for stack in available_stacks():
        passwords[stack] = {}
        result[stack] = (run_program(stack, passwords=passwords[stack]), passwords[stack])
    return result


def container(capture) -> dict:
    """The Redis container (the exporter sidecar, when on, is another Container)."""
    return capture.container().plain


def files(capture, service: str = "redis", durable: bool = False, suffix: str = NAME_SUFFIX) -> dict:
    """The files container writing the Redis container's (or the exporter's) files, or
    (suffix ONLINE_SUFFIX) its online.conf."""
    return capture.files_of(capture.container(service, durable), suffix).plain


def users(capture, durable: bool = False) -> str:
    """The users.acl written for the Redis container."""
    return capture.users_of(capture.container("redis", durable))


def test_staging_container_is_todays_service(captures):
    cap, _ = captures["staging"]
    c = container(cap)
    assert c["name"] == "bizosaas-redis-staging"
    assert [i.plain for i in cap.of_type(IMAGE)] == [
        {"name": "redis:7-alpine", "keepLocally": True},
        {"name": "oliver006/redis_exporter:v1.62.0", "keepLocally": True},
    ]
    assert c["ports"] == [{"internal": 6379.0, "external": 6380.0, "ip": "0.0.0.0", "protocol": "tcp"}]
    assert c["networksAdvanced"] == [{"name": "dokploy-network", "aliases": ["redis-staging"]}]
    assert c["volumes"] == [{"volumeName": "redis_data", "containerPath": "/data"}]
    assert c["restart"] == "unless-stopped"
    assert c["healthcheck"] == {
        "tests": [
            "CMD-SHELL",
            "redis-cli --no-auth-warning --user healthcheck --pass healthcheck ping | grep -q PONG",
        ],
        "interval": "10s",
        "timeout": "5s",
        "retries": 5.0,
        "startPeriod": "10s",
    }
    conf = files(cap)["uploads"][0]["content"] + files(cap, suffix=ONLINE_SUFFIX)["uploads"][0]["content"]
    for line in (
        f"maxmemory {2 * 1024**3}",
        "maxmemory-policy allkeys-lru",
        "save 900 1 300 10 60 10000",
        "appendonly yes",
        "appendfsync everysec",
        "maxclients 1000",
    ):
        assert f"\n{line}\n" in conf, line
    assert (GET_NETWORK, {"name": "dokploy-network"}) in cap.invokes
    assert not cap.of_type(NETWORK), "Dokploy's network is looked up, never created"


@pytest.mark.parametrize("stack", ["dev", "staging", "production"])
def test_container_is_hardened(captures, stack):
    c = container(captures[stack][0])
    settings = load_stack_file(stack)
    assert c["user"] == "999:1000"
    assert c["capabilities"] == {"drops": ["ALL"]}
    assert c["securityOpts"] == ["no-new-privileges:true"]
    assert c["readOnly"] is True
    assert c["tmpfs"] == {"/tmp": "rw,noexec,nosuid,size=64m"}
    assert c["memory"] == settings.memory_limit_mb and c["memory"] * 1024**2 >= 2 * settings.maxmemory
    assert c["memorySwap"] == c["memory"]
    assert c["logDriver"] == "json-file" and c["logOpts"] == {"max-size": "10m", "max-file": "3"}
    assert c["command"] == ["sh", "/data/start-redis.sh"]
    # Stopped, replaced or destroyed: 30 s to write the snapshot, never SIGKILL at once.
    assert c["stopTimeout"] == 30 and c["destroyGraceSeconds"] == 30 and c["stopSignal"] == "SIGTERM"
    assert c["wait"] is True and c["waitTimeout"] > settings.healthcheck_interval
    assert "uploads" not in c, "Docker refuses uploads into a read-only root: the files container writes them"
    written = files(captures[stack][0])
    assert [(u["file"], u["owner"], u["group"], u["permissions"]) for u in written["uploads"]] == [
        ("/data/redis.conf", "999", "1000", "0600"),
        ("/data/start-redis.sh", "999", "1000", "0500"),
    ]
    assert written["uploads"][1]["content"].endswith("exec redis-server /data/redis.conf\n")
    # Never started, so nothing runs with its writable root; it mounts the same volume.
    assert (written["start"], written["mustRun"], written["networkMode"]) == (False, False, "none")
    assert "user" not in written, "Docker keeps the upload's owner only when the container names no user"
    assert written["volumes"] == c["volumes"][:1]
    labels = label_dict(c["labels"])
    assert labels["com.bizosaas.stack"] == stack and labels["com.bizosaas.environment"] == settings.environment


@pytest.mark.parametrize("stack", ["dev", "staging", "production"])
def test_provider_quirks_are_designed_for(captures, stack):
    cap = captures[stack][0]
    for declared in cap.of_type(CONTAINER):
        options = declared.options
        assert options["deleteBeforeReplace"] is True  # fixed container name
        assert "RedisService" in options["parent"]
        if "uploads" not in declared.inputs:  # the service container, not its files container
            assert set(options["replaceOnChanges"]) == {"healthcheck", "tmpfs"}  # ignored by the provider after create
            # New files mean a new container, stopped before they are written.
            written = cap.files_of(declared)
            [files_urn] = options["replaceWith"]
            assert files_urn.endswith(f"::{written.name}") and files_urn in options["dependencies"]
    # online.conf's files container: a dependency of the server, never what replaces it.
    server = cap.container()
    online_files = cap.files_of(server, ONLINE_SUFFIX)
    assert online_files.options["dependencies"] and not online_files.options.get("replaceWith")
    assert any(dep.endswith(f"::{online_files.name}") for dep in server.options["dependencies"])
    assert not any(urn.endswith(f"::{online_files.name}") for urn in server.options["replaceWith"])
    # Data volumes outlive a destroy; the exporter's holds only its password file.
    data = [v for v in cap.of_type(VOLUME) if not v.plain["name"].endswith("_exporter")]
    assert data and all(volume.options["retainOnDelete"] is True for volume in data)


def test_production_differs_where_production_should(captures):
    prod, staging = container(captures["production"][0]), container(captures["staging"][0])
    images = {d.plain["name"] for d in captures["production"][0].of_type(IMAGE) if "exporter" not in d.name}
    assert len(images) == 1, "both instances of production run the same image"
    image = images.pop()
    assert image != "redis:7-alpine" and image.startswith("redis:7.") and image.count(".") == 2
    assert prod["ports"][0]["ip"] == "127.0.0.1" and staging["ports"][0]["ip"] == "0.0.0.0"
    prod_users = users(captures["production"][0])
    app_line = next(x for x in prod_users.splitlines() if x.startswith("user default "))
    for command in DEFAULT_DENIED_COMMANDS:
        assert f"-{command.lower()}" in app_line
    assert prod["volumes"][0]["volumeName"] != staging["volumes"][0]["volumeName"]


def test_dev_is_loopback_without_auth_on_its_own_network(captures):
    cap, passwords = captures["dev"]
    c = container(cap)
    assert c["ports"][0]["ip"] == "127.0.0.1"
    assert cap.one(NETWORK).plain["name"] == "bizosaas-dev"
    assert not [i for i in cap.invokes if i[0] == GET_NETWORK]
    assert "user default reset on nopass" in users(cap)
    assert list(passwords) == ["redis-admin-password"]
    assert cap.outputs["redis_url"].value == "redis://127.0.0.1:6382/0"


@pytest.mark.parametrize("stack", ["staging", "production"])
def test_passwords_are_secret_everywhere(captures, stack):
    cap, passwords = captures[stack]
    each = {"password", "admin-password", "exporter-password"}
    durable = {f"redis-durable-{p}" for p in each} if stack == "production" else set()
    assert set(passwords) == {f"redis-{p}" for p in each} | durable
    app = passwords["redis-password"]
    assert cap.outputs["redis_url"].secret and cap.outputs["redis_admin_url"].secret
    assert cap.outputs["redis_password"].secret
    assert cap.outputs["redis_url"].value == f"redis://default:{app}@127.0.0.1:{load_stack_file(stack).host_port}/0"
    for resource in cap.resources:
        for key, value in resource.inputs.items():
            if is_secret(value) or resource.type.startswith("random:"):
                continue
            text = json.dumps(value)
            for password in passwords.values():
                assert password not in text, f"{resource.type}.{key} holds a password"
    for name, out in cap.outputs.items():
        if not out.secret:
            for password in passwords.values():
                assert password not in json.dumps(out.value), f"output {name} holds a password"
    for declared in cap.of_type(CONTAINER):
        if declared.plain["name"].endswith(ONLINE_SUFFIX):
            assert is_secret(declared.inputs["uploads"]), "the uploaded users.acl (password hashes) is a secret input"
            online, acl = unwrap(declared.inputs["uploads"])
            assert "\nuser " not in online["content"] and redis_conf.password_hash(app) not in online["content"]
            assert acl["file"] == "/data/users.acl" and app not in acl["content"]
    assert redis_conf.password_hash(app) in users(cap)
    online = cap.online_settings()
    assert is_secret(online.inputs["users"]) and redis_conf.password_hash(app) in unwrap(online.inputs["users"])
    assert "users" in online.options["additionalSecretOutputs"], "the state's output of users.acl is a secret"


def test_password_from_secret_config_is_used():
    cap = run_program("staging", secrets_config={"password": "from-config-Pw-9"})
    assert not [r for r in cap.resources if r.name == "redis-password"]
    assert cap.outputs["redis_url"].value.startswith("redis://default:from-config-Pw-9@")
    assert redis_conf.password_hash("from-config-Pw-9") in users(cap)


def test_outputs_consumers_need(captures):
    cap, _ = captures["staging"]
    values = {k: v.value for k, v in cap.outputs.items()}
    assert values["host"] == "127.0.0.1" and values["port"] == 6380
    assert values["network"] == "dokploy-network" and values["container_name"] == "bizosaas-redis-staging"
    assert (values["cache_db"], values["celery_broker_db"], values["celery_result_db"]) == (0, 1, 2)
    env = values["consumer_env"]
    assert env["REDIS_HOST"] == "bizosaas-redis-staging" and env["REDIS_PORT"] == "6379"
    assert env["REDIS_CACHE_TTL"] == "3600" and env["REDIS_SESSION_TTL"] == "86400"
    assert (env["CELERY_BROKER_DB"], env["CELERY_RESULT_DB"]) == ("1", "2")
    assert values["redis_conf"] == redis_conf.render_config(load_stack_file("staging"))


def test_bad_config_fails_before_any_resource_is_declared():
    import pulumi

    from bizosaas_redis_pulumi.program import StackConfigError

    passwords: dict[str, str] = {}
    with pytest.raises(StackConfigError, match="redis:maxmemoryPolicy") as caught:
        run_program("staging", values={"maxmemoryPolicy": "lru", "hostPort": 0}, passwords=passwords)
    assert "redis:hostPort" in str(caught.value)
    assert str(caught.value).startswith("Pulumi.staging.yaml: 2 invalid setting(s)")
    assert isinstance(caught.value, pulumi.RunError), "Pulumi prints a RunError without a traceback"
    assert passwords == {}, "no resource was declared"


def test_preview_keeps_the_urls_secret():
    cap = run_program("staging", preview=True)
    assert cap.outputs["redis_url"].secret


def test_exporter_sidecar_reads_its_password_from_a_file():
    passwords: dict[str, str] = {}
    cap = run_program("production", passwords=passwords)
    exporter = cap.container("redis-exporter")
    plain = exporter.plain
    assert plain["name"] == "bizosaas-redis-production-exporter"
    assert "REDIS_PASSWORD_FILE=/secrets/password.json" in plain["envs"]
    secret = passwords["redis-exporter-password"]
    assert not [e for e in plain["envs"] if secret in e], "no password in the environment"
    # Started after its user's passwords are set on the server (a rotation's new one first).
    component = cap.registered[("bizosaas:redis:RedisExporter", "redis-exporter")]
    assert any(urn.endswith("::redis-online") for urn in component["dependencies"])
    assert cap.outputs["exporter_password"].secret and cap.outputs["exporter_password"].value == secret
    written = cap.files_of(exporter)
    assert is_secret(written.inputs["uploads"])
    upload = written.plain["uploads"][0]
    assert json.loads(upload["content"]) == {"redis://bizosaas-redis-production:6379": secret}
    assert (upload["owner"], upload["permissions"]) == ("59000", "0400")
    assert plain["readOnly"] and plain["capabilities"] == {"drops": ["ALL"]} and plain["user"] == "59000:59000"
    assert plain["ports"] == [{"internal": 9121.0, "external": 9121.0, "ip": "127.0.0.1", "protocol": "tcp"}]
    assert f"user exporter reset on #{redis_conf.password_hash(secret)} -@all +@connection +info" in users(cap)
    assert cap.outputs["exporter_url"].value == "http://127.0.0.1:9121/metrics"
    assert cap.outputs["durable_exporter_url"].value == "http://127.0.0.1:9131/metrics"
    assert "exporter_url" not in run_program("dev").outputs


def test_the_exporter_speaks_tls_to_a_tls_only_redis():
    values = {**read_stack_config(stack_file("staging")), "tlsEnabled": True, "tlsCertsDir": "/etc/redis-tls"}
    passwords: dict[str, str] = {}
    cap = run_program("staging", values=values, passwords=passwords)
    plain = cap.container("redis-exporter").plain
    assert "REDIS_ADDR=rediss://bizosaas-redis-staging:6379" in plain["envs"]
    assert "REDIS_EXPORTER_TLS_CA_CERT_FILE=/tls/ca.crt" in plain["envs"]
    assert plain["mounts"] == [{"type": "bind", "source": "/etc/redis-tls", "target": "/tls", "readOnly": True}]
    assert plain["groupAdds"] == ["1000"]
    upload = cap.files_of(cap.container("redis-exporter")).plain["uploads"][0]
    assert list(json.loads(upload["content"])) == ["rediss://bizosaas-redis-staging:6379"]


def test_the_valkey_flavour_runs_valkeys_own_programs():
    cap = run_program("staging", values={"flavour": "valkey", "image": "valkey/valkey:8.1.4-alpine"})
    c = container(cap)
    assert c["healthcheck"]["tests"][1].startswith("valkey-cli --no-auth-warning --user healthcheck")
    assert files(cap)["uploads"][1]["content"].endswith("exec valkey-server /data/redis.conf\n")
    labels = label_dict(c["labels"])
    assert labels["com.bizosaas.redis.flavour"] == "valkey" and labels["com.bizosaas.redis.licence"] == "BSD-3-Clause"


def test_unix_socket_lives_in_an_in_memory_volume_of_its_own():
    cap = run_program("staging", values={**read_stack_config(stack_file("staging")), "unixSocket": True})
    c = container(cap)
    socket_volume = [v for v in cap.of_type(VOLUME) if v.plain["name"] == "bizosaas-redis-staging-socket"]
    assert len(socket_volume) == 1
    assert socket_volume[0].plain["driverOpts"] == {
        "type": "tmpfs",
        "device": "tmpfs",
        "o": "uid=999,gid=1000,mode=0770,size=1m",
    }
    # Not retained: a destroy removes it, unlike the data volume.
    assert not socket_volume[0].options.get("retainOnDelete")
    assert c["volumes"] == [
        {"volumeName": "redis_data", "containerPath": "/data"},
        {"volumeName": "bizosaas-redis-staging-socket", "containerPath": "/run/redis"},
    ]
    conf = files(cap)["uploads"][0]["content"]
    assert "unixsocket /run/redis/redis.sock\nunixsocketperm 770\n" in conf
    env = cap.outputs["consumer_env"].value
    assert env["REDIS_SOCKET_PATH"] == "/run/redis/redis.sock"
    assert env["REDIS_SOCKET_VOLUME"] == "bizosaas-redis-staging-socket"
    assert cap.outputs["socket_volume"].value == "bizosaas-redis-staging-socket"
    without = run_program("staging")
    assert "unixsocket" not in files(without)["uploads"][0]["content"]
    assert "socket_volume" not in without.outputs
    assert [v.plain["name"] for v in without.of_type(VOLUME)] == ["redis_data", "redis_data_exporter"]


def test_a_split_stack_declares_two_instances_and_says_which_serves_what(captures):
    cap, passwords = captures["production"]
    cache, durable = cap.container(), cap.container(durable=True)
    assert (cache.plain["name"], durable.plain["name"]) == (
        "bizosaas-redis-production",
        "bizosaas-redis-production-durable",
    )
    # The cache keeps layout single's resource names: a switch keeps it the same resource.
    assert (cache.name, durable.name) == ("redis-container", "redis-durable-container")
    # The durable container waits for the cache's: a change to both takes one down at a time.
    assert any(urn.endswith("::redis-container") for urn in durable.options["dependencies"])
    # Its files container waits too: replacing it deletes the durable container first.
    assert any(urn.endswith("::redis-container") for urn in cap.files_of(durable).options["dependencies"])
    assert not any("durable" in urn for urn in cache.options["dependencies"])
    assert cap.online_settings(durable=True).plain["directives"]["maxmemory-policy"] == "noeviction"
    assert "\nmaxmemory-policy noeviction\n" in files(cap, durable=True, suffix=ONLINE_SUFFIX)["uploads"][0]["content"]
    assert "appendonly yes" in files(cap, durable=True)["uploads"][0]["content"]
    assert "appendonly no" in files(cap)["uploads"][0]["content"]
    assert {v.plain["name"] for v in cap.of_type(VOLUME)} == {
        "redis_data_production",
        "redis_data_production_durable",
        "redis_data_production_exporter",
        "redis_data_production_durable_exporter",
    }
    values = {k: v.value for k, v in cap.outputs.items()}
    assert values["layout"] == "split" and values["durable_port"] == 6391
    assert (values["role"], values["durable_role"]) == ("cache", "durable")
    env = values["consumer_env"]
    assert env["REDIS_CACHE_URL"] == "redis://bizosaas-redis-production:6379/0"
    assert env["REDIS_URL"] == env["REDIS_SESSION_URL"] == "redis://bizosaas-redis-production-durable:6379/0"
    assert env["CELERY_BROKER_URL"] == "redis://bizosaas-redis-production-durable:6379/1"
    assert env["CELERY_RESULT_BACKEND"] == "redis://bizosaas-redis-production-durable:6379/2"
    assert cap.outputs["consumer_secrets"].secret and cap.outputs["durable_redis_url"].secret
    secrets = values["consumer_secrets"]
    durable_pw, cache_pw = passwords["redis-durable-password"], passwords["redis-password"]
    assert durable_pw != cache_pw, "each instance has its own users"
    assert secrets["CELERY_BROKER_URL"] == f"redis://default:{durable_pw}@bizosaas-redis-production-durable:6379/1"
    assert secrets["REDIS_CACHE_URL"] == f"redis://default:{cache_pw}@bizosaas-redis-production:6379/0"
    assert (secrets["REDIS_PASSWORD"], secrets["REDIS_CACHE_PASSWORD"]) == (durable_pw, cache_pw)


def test_a_single_stack_serves_every_use_from_its_one_instance(captures):
    env = captures["staging"][0].outputs["consumer_env"].value
    assert env["REDIS_CACHE_URL"] == env["REDIS_URL"] == "redis://bizosaas-redis-staging:6379/0"
    assert env["CELERY_BROKER_URL"] == "redis://bizosaas-redis-staging:6379/1"
    assert env["REDIS_CACHE_HOST"] == env["REDIS_HOST"] == "bizosaas-redis-staging"


def test_a_split_stack_has_one_network_for_both_instances(captures):
    values = {**read_stack_config(stack_file("dev")), "layout": "split"}
    cap = run_program("dev", values=values)
    assert [n.plain["name"] for n in cap.of_type(NETWORK)] == ["bizosaas-dev"]
    for durable in (False, True):
        assert cap.container(durable=durable).plain["networksAdvanced"][0]["name"] == "bizosaas-dev"
    production = captures["production"][0]
    assert [i for i in production.invokes if i[0] == GET_NETWORK] == [(GET_NETWORK, {"name": "dokploy-network"})]


def test_a_rotation_keeps_the_previous_password_accepted_beside_the_new_one():
    cap = run_program(
        "staging",
        secrets_config={"password": "new-Pw-2", "previousPassword": "old-Pw-1", "adminPassword": "admin-Pw-3"},
    )
    content = users(cap)
    hashes = " ".join(f"#{redis_conf.password_hash(p)}" for p in ("new-Pw-2", "old-Pw-1"))
    assert f"user default reset on {hashes} " in content
    # The admin has no rotation under way: its one password only.
    assert f"user admin reset on #{redis_conf.password_hash('admin-Pw-3')} ~* " in content
    # Consumers get the new password, never the previous one.
    assert cap.outputs["redis_url"].value.startswith("redis://default:new-Pw-2@")
    assert "old-Pw-1" not in json.dumps({k: v.value for k, v in cap.outputs.items()})


def test_turning_auth_on_publishes_the_password_before_the_server_requires_it():
    # `rotate start` with authentication off: the consumers get a password, the server
    # still takes any (nopass), and the auth label of its online settings says so for
    # reviewers and the policy pack: the container stays as it is.
    off = run_program("dev")
    cap = run_program("dev", secrets_config={"password": "first-Pw-1"})
    assert "user default reset on nopass" in users(cap) and "first-Pw-1" not in users(cap)
    assert cap.outputs["redis_url"].value == "redis://default:first-Pw-1@127.0.0.1:6382/0"
    assert cap.outputs["redis_url"].secret and cap.outputs["redis_password"].secret
    assert "first-Pw-1" in json.dumps(cap.outputs["consumer_secrets"].value)
    assert container(cap) == container(off)
    online, online_off = cap.online_settings().plain["labels"], off.online_settings().plain["labels"]
    assert [x for x in online if x not in online_off] == [{"label": "com.bizosaas.redis.auth", "value": "turning-on"}]
    # `rotate finish` sets authEnabled: from then on the server requires it.
    dev_on = {**read_stack_config(stack_file("dev")), "authEnabled": "true"}
    on = run_program("dev", values=dev_on, secrets_config={"password": "first-Pw-1"})
    assert f"user default reset on #{redis_conf.password_hash('first-Pw-1')} " in users(on)
    assert "protected-mode yes" in files(on)["uploads"][0]["content"]


def test_a_rotation_on_a_sentinel_stack_holds_both_passwords_on_every_node_and_sentinel():
    hosts = {"a": {"url": "unix:///var/run/docker.sock", "address": "127.0.0.1"}}
    cap = run_program(
        "staging",
        values={"topology": "sentinel", "dockerHosts": hosts, "sentinelPlacement": ["a", "a", "a"]},
        secrets_config={"adminPassword": "new-Adm-2", "previousAdminPassword": "old-Adm-1", "password": "app-Pw-3"},
    )
    both = " ".join(f"#{redis_conf.password_hash(p)}" for p in ("new-Adm-2", "old-Adm-1"))
    configs = [
        upload["content"]
        for declared in cap.of_type(CONTAINER)
        for upload in unwrap(declared.inputs.get("uploads", []))
        if upload["file"] == redis_conf.USERS_PATH
    ]
    assert len(configs) == 6  # three nodes, three Sentinels
    assert all(f"user admin reset on {both} " in content for content in configs)
    # The application user has no rotation under way: its one password only.
    assert all(f"user default reset on #{redis_conf.password_hash('app-Pw-3')} " in content for content in configs)


@pytest.mark.parametrize("step", ["start", "switch"])
def test_a_topology_password_rotation_accepts_two_while_the_clients_use_one(step):
    """start: the next replication and Sentinel passwords accepted beside the current ones,
    which the nodes' masterauth and the Sentinels' auth-pass keep; switch: the clients on
    the new ones, the old ones accepted as the previous."""
    hosts = {"a": {"url": "unix:///var/run/docker.sock", "address": "127.0.0.1"}}
    given = {"replicationPassword": "repl-Old-1", "sentinelPassword": "sent-Old-1"}
    if step == "start":
        given |= {"nextReplicationPassword": "repl-New-2", "nextSentinelPassword": "sent-New-2"}
    else:
        given = {
            "replicationPassword": "repl-New-2",
            "sentinelPassword": "sent-New-2",
            "previousReplicationPassword": "repl-Old-1",
            "previousSentinelPassword": "sent-Old-1",
        }
    cap = run_program(
        "staging",
        values={"topology": "sentinel", "dockerHosts": hosts, "sentinelPlacement": ["a", "a", "a"]},
        secrets_config=given,
    )
    uploads = [u for d in cap.of_type(CONTAINER) for u in unwrap(d.inputs.get("uploads", []))]
    users = [u["content"] for u in uploads if u["file"] == redis_conf.USERS_PATH]
    both = {user: " ".join(f"#{redis_conf.password_hash(p)}" for p in pair) for user, pair in (
        ("replication", ("repl-Old-1", "repl-New-2") if step == "start" else ("repl-New-2", "repl-Old-1")),
        ("sentinel", ("sent-Old-1", "sent-New-2") if step == "start" else ("sent-New-2", "sent-Old-1")),
    )}  # fmt: skip
    assert len(users) == 6 and all(f"user sentinel reset on {both['sentinel']} " in text for text in users)
    assert sum(f"user replication reset on {both['replication']} " in text for text in users) == 3  # the nodes
    clients = "Old-1" if step == "start" else "New-2"
    configs = [u["content"] for u in uploads if u["file"] in ("/data/redis.conf", "/data/sentinel.conf")]
    assert sum(f"masterauth repl-{clients}\n" in text for text in configs) == 3
    assert sum(f"sentinel-pass sent-{clients}\n" in text for text in configs) == 3
    assert cap.outputs["replication_password"].secret and cap.outputs["replication_password"].value == f"repl-{clients}"


@pytest.mark.parametrize("stack", ["dev", "staging", "production"])
def test_each_server_has_its_online_settings_applied_as_admin(captures, stack):
    cap = captures[stack][0]
    settings = load_stack_file(stack)
    applied = cap.of_type(ONLINE_SETTINGS)
    assert len(applied) == len(instances(settings))
    first = next(r for r in applied if r.name == "redis-online")
    assert first.plain["directives"] == redis_conf.online_config(settings)
    assert first.plain["endpoints"] == [f"{settings.url_host}:{settings.host_port}"]
    assert first.plain["username"] == settings.admin_username and is_secret(first.inputs["password"])
    # After online.conf is written and the server runs.
    server, online_files = cap.container(), cap.files_of(cap.container(), ONLINE_SUFFIX)
    assert {f"::{server.name}", f"::{online_files.name}"} <= {
        "::" + urn.rsplit("::", 1)[1] for urn in first.options["dependencies"]
    }


def test_new_certificates_are_loaded_by_the_online_settings(tmp_path):
    """With TLS on, the online settings set the certificate files again (Redis reads them
    again) and record a fingerprint of the certificate and the CA, not of the key: new
    files are an update of that resource, not a new container."""

    def applied() -> tuple[dict, str]:
        cap = run_program("dev", values={"tlsEnabled": True, "tlsCertsDir": str(tmp_path)})
        [online] = cap.of_type(ONLINE_SETTINGS)
        return online.plain, json.dumps(cap.container().plain, sort_keys=True)

    for name in ("tls.crt", "tls.key", "ca.crt"):
        (tmp_path / name).write_text(f"first {name}")
    first, container = applied()
    assert redis_conf.TLS_FILES.items() <= first["directives"].items()
    (tmp_path / "tls.key").write_text("another key")
    assert applied()[0]["certificates"] == first["certificates"], "the key is not fingerprinted"
    (tmp_path / "tls.crt").write_text("renewed")
    renewed, same_container = applied()
    assert renewed["certificates"] != first["certificates"] and same_container == container
    assert "certificates" not in run_program("dev").of_type(ONLINE_SETTINGS)[0].plain
