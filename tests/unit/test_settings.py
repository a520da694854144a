"""The settings model: defaults, parsing, every validation rule and its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from bizosaas_redis.settings import (
    DEFAULT_DENIED_COMMANDS,
    NoDurableInstance,
    Settings,
    SettingsError,
    available_stacks,
    build_settings,
    format_size,
    instance,
    instances,
    load_stack_file,
    parse_size,
    read_stack_config,
)

GB = 1024**3


def test_the_three_stacks_exist_and_validate():
    assert available_stacks() == ["dev", "production", "staging"]
    for stack in available_stacks():
        assert load_stack_file(stack).stack == stack


def test_staging_reproduces_the_running_service():
    s = load_stack_file("staging")
    assert s.name == "bizosaas-redis-staging"
    assert s.image == "redis:7-alpine"
    assert (s.publish_address, s.host_port) == ("0.0.0.0", 6380)
    assert (s.network_name, s.network_external) == ("dokploy-network", True)
    assert s.volume_name == "redis_data"
    assert s.maxmemory == 2 * GB and s.maxmemory_policy == "allkeys-lru"
    assert [str(r) for r in s.save] == ["900 1", "300 10", "60 10000"]
    assert s.appendonly and s.appendfsync == "everysec"
    assert s.maxclients == 1000
    assert s.restart_policy == "unless-stopped"
    assert (s.healthcheck_interval, s.healthcheck_timeout, s.healthcheck_retries) == (10, 5, 5)
    assert s.auth_enabled
    assert {"FLUSHALL", "FLUSHDB"} <= set(s.denied_commands)


def test_production_differs_where_it_should():
    prod, staging = load_stack_file("production"), load_stack_file("staging")
    assert prod.environment == "production" and prod.auth_enabled
    assert ":7." in prod.image and prod.image.count(".") >= 2, "exact version pinned"
    assert prod.publish_address == "127.0.0.1"
    assert set(DEFAULT_DENIED_COMMANDS) <= set(prod.denied_commands)
    assert len(prod.denied_commands) > len(staging.denied_commands)
    assert prod.memory_limit_bytes >= 2 * prod.maxmemory


def test_dev_is_light_loopback_and_may_skip_auth():
    dev = load_stack_file("dev")
    assert dev.publish_address == "127.0.0.1"
    assert not dev.auth_enabled
    assert dev.maxmemory < load_stack_file("staging").maxmemory
    assert not dev.network_external


def test_defaults_match_the_seed():
    s = Settings()
    assert s.maxmemory == 2 * GB and s.maxmemory_policy == "allkeys-lru"
    assert s.maxclients == 1000 and s.cache_ttl == 3600 and s.session_ttl == 86400
    assert (s.cache_db, s.celery_broker_db, s.celery_result_db) == (0, 1, 2)
    assert s.stream_maxlen == 10_000
    assert s.memory_limit_bytes == 4 * GB  # 2 × maxmemory by default
    assert s.memory_limit_mb == 4096
    assert s.name == "bizosaas-redis-dev"


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("2gb", 2 * GB),
        ("512mb", 512 * 1024**2),
        ("1g", 10**9),
        ("100k", 100_000),
        ("64KB", 65536),
        ("1048576", 1048576),
        (4096, 4096),
        (" 3 gb ", 3 * GB),
    ],
)
def test_sizes_accept_redis_units(text, size):
    assert parse_size(text) == size


def test_format_size_round_trips():
    for size in (2 * GB, 256 * 1024**2, 1536 * 1024, 1000):
        assert parse_size(format_size(size)) == size


def test_json_strings_from_pulumi_config_are_parsed():
    # Pulumi hands lists and objects to the program as JSON strings.
    s = build_settings(
        {
            "save": '["60 5"]',
            "networkAliases": '["a","b"]',
            "labels": '{"team": "x"}',
            "hostPort": "7000",
            "authEnabled": "false",
        },
        "dev",
    )
    assert [str(r) for r in s.save] == ["60 5"]
    assert s.network_aliases == ["a", "b"] and s.labels == {"team": "x"}
    assert s.host_port == 7000 and s.auth_enabled is False


def test_bare_yes_and_no_from_yaml_are_words(tmp_path):
    (tmp_path / "Pulumi.words.yaml").write_text(
        "config:\n  redis:appendfsync: no\n  redis:restartPolicy: no\n  redis:tlsAuthClients: yes\n"
    )
    s = load_stack_file("words", root=tmp_path)
    assert (s.appendfsync, s.restart_policy, s.tls_auth_clients) == ("no", "no", "yes")
    # Read as Pulumi does (YAML 1.2): the words stay words, true/false are booleans.
    assert read_stack_config(tmp_path / "Pulumi.words.yaml")["appendfsync"] == "no"
    assert build_settings({"appendfsync": False, "authEnabled": "false"}, "x").appendfsync == "no"


def test_empty_save_turns_rdb_off():
    assert build_settings({"save": []}, "dev").save == []


def test_denied_commands_are_normalised():
    assert build_settings({"deniedCommands": ["flushall", "config|set"]}, "dev").denied_commands == [
        "FLUSHALL",
        "CONFIG|SET",
    ]


BAD_INPUTS = [
    ({"environment": "prod"}, "redis:environment", "'dev', 'staging' or 'production'"),
    ({"containerName": "-bad"}, "redis:containerName", "must match"),
    ({"containerName": "has space"}, "redis:containerName", "must match"),
    ({"image": "Redis:7"}, "redis:image", "must match"),
    ({"hostPort": 0}, "redis:hostPort", "greater than or equal to 1"),
    ({"hostPort": 70000}, "redis:hostPort", "less than or equal to 65535"),
    ({"hostPort": "abc"}, "redis:hostPort", "integer"),
    ({"publishAddress": "localhost"}, "redis:publishAddress", "IP address"),
    ({"publishAddress": "300.1.1.1"}, "redis:publishAddress", "IP address"),
    ({"networkName": ""}, "redis:networkName", "must match"),
    ({"networkAliases": ["ok", "bad alias"]}, "redis:networkAliases[1]", "must match"),
    ({"networkExternal": "maybe"}, "redis:networkExternal", "boolean"),
    ({"volumeName": "a/b"}, "redis:volumeName", "must match"),
    ({"maxmemory": "2tb"}, "redis:maxmemory", "units: b, k, kb, m, mb, g, gb"),
    ({"maxmemory": "0"}, "redis:maxmemory", "greater than zero"),
    ({"maxmemory": True}, "redis:maxmemory", "size"),
    ({"maxmemoryPolicy": "lru"}, "redis:maxmemoryPolicy", "'allkeys-lru'"),
    ({"maxmemorySamples": 0}, "redis:maxmemorySamples", "greater than or equal to 1"),
    ({"memoryLimit": "3gb"}, "redis:memoryLimit", "at least 2.0 × maxmemory and maxmemory + 64mb (4gb)"),
    ({"maxclients": 0}, "redis:maxclients", "greater than or equal to 1"),
    ({"maxclients": 1_000_000}, "redis:maxclients", "less than or equal to 100000"),
    ({"timeout": -1}, "redis:timeout", "greater than or equal to 0"),
    ({"databases": 0}, "redis:databases", "greater than or equal to 1"),
    ({"cacheDb": 16}, "redis:cacheDb", "below databases (16)"),
    ({"celeryBrokerDb": 20}, "redis:celeryBrokerDb", "below databases"),
    ({"celeryResultDb": 1}, "redis:celeryResultDb", "differ from celeryBrokerDb"),
    ({"cacheTtl": 0}, "redis:cacheTtl", "greater than 0"),
    ({"sessionTtl": 10**9}, "redis:sessionTtl", "less than or equal to 31536000"),
    ({"streamMaxlen": 0}, "redis:streamMaxlen", "greater than or equal to 1"),
    ({"save": ["900"]}, "redis:save[0]", '"<seconds> <changes>"'),
    ({"save": ["0 1"]}, "redis:save[0]", "greater than or equal to 1"),
    ({"appendfsync": "sometimes"}, "redis:appendfsync", "'always', 'everysec' or 'no'"),
    ({"appendonly": "often"}, "redis:appendonly", "boolean"),
    ({"environment": "production", "authEnabled": False}, "redis:authEnabled", "true in production"),
    ({"deniedCommands": ["PING"]}, "redis:deniedCommands", "PING cannot be denied"),
    ({"deniedCommands": ["rm -rf"]}, "redis:deniedCommands", "not a command name"),
    ({"tlsEnabled": True}, "redis:tlsCertsDir", "required when tlsEnabled"),
    ({"tlsAuthClients": "always"}, "redis:tlsAuthClients", "'yes', 'no' or 'optional'"),
    ({"restartPolicy": "sometimes"}, "redis:restartPolicy", "'unless-stopped'"),
    ({"healthcheckInterval": 0}, "redis:healthcheckInterval", "greater than or equal to 1"),
    ({"healthcheckTimeout": 20}, "redis:healthcheckTimeout", "not exceed healthcheckInterval"),
    ({"healthcheckRetries": 0}, "redis:healthcheckRetries", "greater than or equal to 1"),
    ({"logMaxSize": "10MB"}, "redis:logMaxSize", "must match"),
    ({"logMaxFiles": 0}, "redis:logMaxFiles", "greater than or equal to 1"),
    ({"loglevel": "loud"}, "redis:loglevel", "'notice'"),
    ({"labels": ["a"]}, "redis:labels", "dictionary"),
    ({"appUsername": "admin"}, "redis:adminUsername", "differ from appUsername"),
    ({"adminUsername": "healthcheck"}, "redis:adminUsername", "reserved"),
    ({"appUsername": "exporter"}, "redis:appUsername", "reserved"),
    ({"alertMemoryPercent": 0}, "redis:alertMemoryPercent", "greater than or equal to 1"),
    ({"alertMemoryCriticalPercent": 70}, "redis:alertMemoryCriticalPercent", "at least alertMemoryPercent (80)"),
    ({"alertHitRateCriticalPercent": 90}, "redis:alertHitRateCriticalPercent", "not exceed alertHitRatePercent"),
    ({"exporterEnabled": True, "exporterPort": 6380}, "redis:exporterPort", "differ from hostPort"),
    ({"maxmemry": "1gb"}, "redis:maxmemry", "did you mean redis:maxmemory"),
]


@pytest.mark.parametrize(("values", "key", "allowed"), BAD_INPUTS, ids=[str(v) for v, _, _ in BAD_INPUTS])
def test_bad_input_names_key_value_and_allowed(values, key, allowed):
    with pytest.raises(SettingsError) as caught:
        build_settings(values, "teststack")
    message = str(caught.value)
    assert message.startswith("stack teststack:")
    line = next((p for p in caught.value.problems if p.startswith(key)), None)
    assert line is not None, f"{key} not named in: {message}"
    assert allowed in line, line


def test_all_problems_of_a_stack_file_are_reported_together(tmp_path: Path):
    (tmp_path / "Pulumi.broken.yaml").write_text(
        "config:\n"
        "  redis:maxmemoryPolicy: lru\n"
        "  redis:hostPort: 99999\n"
        "  redis:appendfsync: sometimes\n"
        "  redis:maxmemry: 1gb\n"
        "  aws:region: eu-west-1\n"  # other namespaces are not ours to judge
    )
    with pytest.raises(SettingsError) as caught:
        load_stack_file("broken", root=tmp_path)
    assert str(caught.value).startswith("Pulumi.broken.yaml: 4 invalid setting(s)")
    keys = sorted(p.split(" ")[0].rstrip(":") for p in caught.value.problems)
    assert keys == ["redis:appendfsync", "redis:hostPort", "redis:maxmemoryPolicy", "redis:maxmemry"]


def test_missing_stack_file_lists_the_available_ones():
    with pytest.raises(SettingsError, match=r"available: Pulumi\.dev\.yaml"):
        load_stack_file("nope")


def test_secret_keys_are_accepted_but_never_held():
    s = build_settings({"password": {"secure": "v1:ciphertext-xyz"}, "adminPassword": "admin-Pw-4711"}, "dev")
    dumped = s.model_dump_json(by_alias=True)
    assert "ciphertext-xyz" not in dumped and "admin-Pw-4711" not in dumped
    assert not {"password", "adminPassword", "exporterPassword"} & set(s.model_dump(by_alias=True))


def test_memory_limit_default_and_explicit():
    assert build_settings({"maxmemory": "1gb"}, "dev").memory_limit_mb == 2048
    assert build_settings({"maxmemory": "1gb", "memoryLimit": "2560mb"}, "dev").memory_limit_mb == 2560


def test_url_host_follows_the_publish_address():
    assert build_settings({"publishAddress": "0.0.0.0"}, "x").url_host == "127.0.0.1"
    assert build_settings({"publishAddress": "10.0.0.5"}, "x").url_host == "10.0.0.5"
    assert build_settings({"advertisedHost": "redis.example.internal"}, "x").url_host == "redis.example.internal"


def test_cross_field_problems_are_listed_with_field_problems():
    with pytest.raises(SettingsError) as caught:
        build_settings({"maxclients": 0, "celeryBrokerDb": 2, "celeryResultDb": 2}, "dev")
    assert caught.value.problems == [
        "redis:maxclients = 0: must be greater than or equal to 1",
        "redis:celeryResultDb = 2: must differ from celeryBrokerDb",
    ]


def test_a_rule_reading_an_invalid_setting_is_not_guessed():
    # maxmemory is invalid, so memoryLimit cannot be judged against it: one problem, not two.
    with pytest.raises(SettingsError) as caught:
        build_settings({"maxmemory": "lots", "memoryLimit": "1mb"}, "dev")
    assert [p.split(" = ")[0] for p in caught.value.problems] == ["redis:maxmemory"]


def test_the_exporter_reaches_a_tls_only_redis_but_has_no_client_certificate():
    tls = {"exporterEnabled": True, "tlsEnabled": True, "tlsCertsDir": "/etc/redis-tls"}
    assert build_settings(tls, "dev").tls_auth_clients == "optional"
    with pytest.raises(SettingsError) as caught:
        build_settings({**tls, "tlsAuthClients": "yes"}, "dev")
    assert caught.value.problems == [
        'redis:tlsAuthClients = "yes": cannot be yes with exporterEnabled: redis_exporter verifies Redis with ca.crt '
        "but has no client certificate of its own; use optional (clients that present one are still verified)"
    ]


def test_a_stack_file_that_is_not_yaml_is_one_problem_with_its_place(tmp_path):
    (tmp_path / "Pulumi.broken.yaml").write_text("config:\n  redis:maxmemory: 2gb\n   redis:maxclients: [1000\n")
    with pytest.raises(SettingsError) as caught:
        load_stack_file("broken", root=tmp_path)
    assert str(caught.value).splitlines()[0] == "Pulumi.broken.yaml: 1 invalid setting(s):"
    assert caught.value.problems[0].startswith("not valid YAML: line 3, column ")


def test_a_stack_file_without_a_config_mapping_is_refused(tmp_path):
    (tmp_path / "Pulumi.flat.yaml").write_text("- just\n- a list\n")
    with pytest.raises(SettingsError, match="not a Pulumi stack file: expected a mapping with a `config:` mapping"):
        load_stack_file("flat", root=tmp_path)


@pytest.mark.parametrize(
    ("values", "licence"),
    [
        ({"image": "redis:7.2.4-alpine"}, "BSD-3-Clause"),
        ({"image": "redis:7.4.6-alpine"}, "RSALv2 OR SSPLv1"),
        ({"image": "redis:8.0.4"}, "RSALv2 OR SSPLv1 OR AGPLv3"),
        ({"image": "redis:7-alpine"}, "RSALv2 OR SSPLv1 (7.4 and later; BSD-3-Clause up to 7.2.4)"),
        ({"flavour": "valkey", "image": "valkey/valkey:8.1.4-alpine"}, "BSD-3-Clause"),
    ],
)
def test_the_licence_follows_the_flavour_and_version(values, licence):
    assert build_settings(values, "dev").licence == licence


def test_the_image_must_be_of_the_flavour():
    with pytest.raises(SettingsError) as caught:
        build_settings({"flavour": "valkey", "image": "redis:7.4.6-alpine"}, "dev")
    assert caught.value.problems == ['redis:image = "redis:7.4.6-alpine": is not a valkey image (flavour valkey)']


# --- layouts ------------------------------------------------------------------------


def test_production_splits_and_the_other_stacks_stay_single():
    assert [s.role for s in instances(load_stack_file("production"))] == ["cache", "durable"]
    for stack in ("dev", "staging"):
        assert [s.role for s in instances(load_stack_file(stack))] == ["shared"]
    assert build_settings({"environment": "production"}, "p").layout == "split"
    assert build_settings({"environment": "production", "layout": "single"}, "p").layout == "single"


def test_the_durable_instance_inherits_and_takes_its_role_defaults():
    cache, durable = instances(build_settings({"layout": "split", "maxmemory": "512mb", "hostPort": 7000}, "x"))
    assert (cache.name, durable.name) == ("bizosaas-redis-x", "bizosaas-redis-x-durable")
    assert (durable.volume_name, durable.host_port, durable.network_aliases) == (
        "redis_data_durable",
        7010,
        ["redis-durable"],
    )
    assert durable.maxmemory_policy == "noeviction" and durable.appendonly
    assert durable.maxmemory == 512 * 1024**2, "unset: the top-level value"
    assert cache.maxmemory_policy == "allkeys-lru"


def test_the_durable_block_sets_its_own_values():
    values = {"layout": "split", "durable": {"maxmemory": "1gb", "hostPort": 7100, "appendfsync": "always"}}
    durable = instances(build_settings(values, "x"))[1]
    assert (durable.maxmemory, durable.host_port, durable.appendfsync) == (1024**3, 7100, "always")


@pytest.mark.parametrize(
    ("values", "line"),
    [
        (
            {"layout": "split", "durable": {"maxmemoryPolicy": "allkeys-lru"}},
            'redis:durable.maxmemoryPolicy = "allkeys-lru": must be noeviction on the durable instance',
        ),
        ({"layout": "split", "durable": {"image": "redis:7.4.6"}}, 'redis:durable = ["image"]: may not set image'),
        ({"layout": "split", "durable": {"maxmemory": "lots"}}, 'redis:durable.maxmemory = "lots": must be a size'),
        ({"layout": "split", "durable": {"hostPort": 6380}}, "redis:durable.hostPort = 6380: must differ from"),
        ({"layout": "split", "durable": {"containerName": "bizosaas-redis-x"}}, "redis:durable.containerName ="),
        ({"layout": "split", "durable": {"maxmemry": "1gb"}}, "redis:durable.maxmemry: unknown setting"),
        ({"durable": {"maxmemory": "1gb"}}, 'redis:durable = {"maxmemory": "1gb"}: is only read with layout split'),
        ({"layout": "triple"}, "redis:layout = \"triple\": must be 'single' or 'split'"),
    ],
)
def test_layout_problems_name_the_setting(values, line):
    with pytest.raises(SettingsError) as caught:
        build_settings(values, "x")
    assert any(problem.startswith(line) for problem in caught.value.problems), caught.value.problems


def test_a_tool_asks_for_an_instance_by_what_it_holds():
    split = build_settings({"layout": "split"}, "x")
    assert (instance(split, "cache").role, instance(split, "durable").role) == ("cache", "durable")
    single = build_settings({}, "x")
    assert instance(single, "cache") is single
    with pytest.raises(NoDurableInstance, match=r"^stack x has layout single: it has no durable instance$"):
        instance(single, "durable")
