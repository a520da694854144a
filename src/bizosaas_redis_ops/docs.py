"""README tables generated from their sources of truth: the settings model, the rules, and the
committed results files of the measurements (`results/`)."""

from __future__ import annotations

import functools
import json
import re
import statistics
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import (
    DURABLE_PREFIX,
    INTERNAL_FIELDS,
    NAMESPACE,
    NEXT_KEYS,
    PREVIOUS_KEYS,
    SECRET_KEYS,
    Settings,
    available_stacks,
    format_size,
    instances,
    load_stack_file,
    online_acl_settings,
    online_directives,
    online_sentinel_options,
)
from bizosaas_redis_ops.check import alerts
from bizosaas_redis_ops.deploy.pulumi_stack import policy_pack_dir
from bizosaas_redis_ops.results import RESULTS_DIR
from redis_policies.rules import RULES, STACK_RULES, effective_level


class DocsError(BizosaasRedisError):
    pass


README = "README.md"
DOCS_DIR = "docs"


SECRET_DOCS = {
    "password": "Secret. Application user's password; generated (32 characters) when unset. With authEnabled "
    "false (set by `rotate start`, turning authentication on): published to the consumers, not yet required.",
    "adminPassword": "Secret. Admin user's password; generated (32 characters) when unset. Change it with "
    "`rotate start --user admin`: the running servers are changed as the admin, with the password they hold.",
    "exporterPassword": "Secret. The exporter ACL user's password (exporterEnabled); generated when unset.",
    "replicationPassword": "Secret. Topology sentinel: the password replicas authenticate to the primary with "
    "(PSYNC rights only); generated when unset. Written in clear into each node's redis.conf (masterauth, "
    "mode 0600 on its volume): Redis takes it no other way.",
    "sentinelPassword": "Secret. Topology sentinel: the password Sentinels authenticate to nodes and to each "
    "other with; generated when unset. In clear in each Sentinel's sentinel.conf (mode 0600, its volume).",
    "previousPassword": "Secret. During a rotation (`bizosaas-redis rotate start`): the application user's "
    "previous password, still accepted beside `password` until `rotate finish` removes it.",
    "previousAdminPassword": "Secret. During a rotation: the admin user's previous password, still accepted "
    "beside `adminPassword` until `rotate finish`.",
    "previousExporterPassword": "Secret. During a rotation (`rotate start --user exporter`): the exporter "
    "user's previous password, still accepted beside `exporterPassword` until `rotate finish`.",
    "previousReplicationPassword": "Secret. Topology sentinel, between `rotate switch` and `finish`: the "
    "replication password before the switch, still accepted on every node.",
    "previousSentinelPassword": "Secret. Topology sentinel, between `rotate switch` and `finish`: the Sentinel "
    "password before the switch, still accepted on every node and Sentinel.",
    "nextReplicationPassword": "Secret. Topology sentinel, between `rotate start` and `switch`: the next "
    "replication password, accepted on every node before any replica uses it.",
    "nextSentinelPassword": "Secret. Topology sentinel, between `rotate start` and `switch`: the next Sentinel "
    "password, accepted on every node and Sentinel before any Sentinel uses it.",
}
SECRET_DOCS.update(
    {
        DURABLE_PREFIX + key[0].upper() + key[1:]: f"{doc} Layout split: that of the durable instance."
        for key, doc in SECRET_DOCS.items()
    }
)
SIZE_FIELDS = {"maxmemory", "memory_limit"}


def _show(name: str, value: Any) -> str:
    if value is None:
        return "—"
    if name in SIZE_FIELDS and isinstance(value, int):
        return format_size(value)
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):
        return json.dumps([str(v) for v in value])
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def _default(name: str) -> Any:
    field = Settings.model_fields[name]
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |"


def config_table() -> str:
    """Every setting: key, default, each stack's value where it differs, description."""
    stacks = available_stacks()
    loaded = {stack: load_stack_file(stack) for stack in stacks}
    header = ["Key", "Default", *stacks, "Applied without restart", "Description"]
    rows = [_row(header), "|" + "---|" * len(header)]
    online = {name: f"CONFIG SET {directive}" for name, directive in online_directives().items()}
    online |= {name: f"SENTINEL SET {option}" for name, option in online_sentinel_options().items()}
    online |= {name: "ACL SETUSER" for name in online_acl_settings()}
    for name, field in Settings.model_fields.items():
        if name in INTERNAL_FIELDS:
            continue
        default = _show(name, _default(name))
        per_stack = [_show(name, getattr(loaded[s], name)) for s in stacks]
        per_stack = [v if v != default else "" for v in per_stack]
        shown_default = f"`{default}`" if default != "—" else default
        applied = f"yes (`{online[name]}`)" if name in online else ""
        rows.append(_row([f"`{NAMESPACE}:{field.alias}`", shown_default, *per_stack, applied, field.description or ""]))
    # The passwords that are users.acl's alone: set with ACL SETUSER. (The replication and
    # Sentinel passwords are also their clients' masterauth, auth-pass, sentinel-pass.)
    in_users = {*PREVIOUS_KEYS, *PREVIOUS_KEYS.values(), *NEXT_KEYS.values()} - set(NEXT_KEYS)
    for key in SECRET_KEYS:
        base = key.removeprefix(DURABLE_PREFIX)
        base = base[0].lower() + base[1:]
        default = "—" if base.startswith("previous") else "generated"
        applied = "yes (`ACL SETUSER`)" if base in in_users else ""
        rows.append(_row([f"`{NAMESPACE}:{key}`", default, *[""] * len(stacks), applied, SECRET_DOCS[key]]))
    return "\n".join(rows)


def _instance_cells(instance: Settings) -> list[str]:
    """One instance's column of the stacks-at-a-glance table."""
    save = " / ".join(f"{rule.seconds} {rule.changes}" for rule in instance.save) or "off"
    aof = f"AOF {instance.appendfsync}" if instance.appendonly else "no AOF"
    denied = ", ".join(instance.denied_commands[:3]) + (", …" if len(instance.denied_commands) > 3 else "")
    network = f"`{instance.network_name}`" + (" (existing)" if instance.network_external else " (created)")
    return [
        f"`{instance.name}`",
        f"`{instance.image}`",
        f"`{instance.publish_address}:{instance.host_port}`",
        network + (f"; aliases {', '.join(instance.network_aliases)}" if instance.network_aliases else ""),
        f"`{instance.volume_name}`",
        f"{format_size(instance.maxmemory)} / {instance.maxmemory_policy} / {instance.memory_limit_mb} MB",
        f"RDB {save}; {aof}",
        "on" if instance.auth_enabled else "off",
        denied or "nothing",
    ]


STACK_ROWS = [
    "container",
    "image",
    "published port",
    "network",
    "volume at `/data`",
    "maxmemory / policy / container limit",
    "persistence",
    "authentication",
    "denied to applications",
]


def stacks_table() -> str:
    """Each stack file's instances at a glance (a split stack: cache, then durable)."""
    columns: list[tuple[str, Settings]] = []
    for stack in available_stacks():
        settings = load_stack_file(stack)
        for instance in instances(settings):
            role = "" if settings.layout == "single" else f" ({instance.role})"
            columns.append((f"{stack}{role}", instance))
    header = ["", *(name for name, _ in columns)]
    rows = [_row(header), "|" + "---|" * len(header)]
    rows.append(_row(["layout, topology", *(f"{i.layout}, {i.topology}" for _, i in columns)]))
    cells = [_instance_cells(instance) for _, instance in columns]
    for number, name in enumerate(STACK_ROWS):
        rows.append(_row([name, *(column[number] for column in cells)]))
    return "\n".join(rows)


def outputs_table() -> str:
    """Every stack output, from bizosaas_redis.stack_outputs (the program exports no other)."""
    from bizosaas_redis import stack_outputs

    rows = [_row(["Output", "Per", "Secret", "What it holds"]), "|" + "---|" * 4]
    for per, outputs in (("stack", stack_outputs.STACK), ("instance", stack_outputs.INSTANCE)):
        for name, description in outputs.items():
            secret = "yes" if name in stack_outputs.SECRET else ""
            rows.append(_row([f"`{name}`", per, secret, description.removeprefix("Secret. ")]))
    return "\n".join(rows)


def cli_reference() -> str:
    """Every command's `--help`, as `bizosaas-redis <command> --help` prints it."""
    import click

    from bizosaas_redis_ops.cli import main

    sections: list[str] = []

    def walk(command: click.Command, name: str, parent: click.Context | None) -> None:
        # As the command line makes them (each context under its parent, which passes the
        # group's settings down), at a fixed width: the page must not depend on a terminal.
        settings = {**main.context_settings, "terminal_width": 100} if parent is None else {}
        context = click.Context(command, parent=parent, info_name=name, **settings)
        sections.append(f"### `{context.command_path}`\n\n```\n{command.get_help(context)}\n```")
        if isinstance(command, click.Group):
            for sub_name in command.list_commands(context):
                sub = command.get_command(context, sub_name)
                if sub is not None and not sub.hidden:
                    walk(sub, sub_name, context)

    walk(main, "bizosaas-redis", None)
    return "\n\n".join(sections)


def policy_config(stack: str) -> dict[str, Any]:
    path = policy_pack_dir() / "config" / f"{stack}.json"
    return json.loads(path.read_text()) if path.exists() else {}


def policy_table() -> str:
    """Every rule with its enforcement in each stack's pack config."""
    stacks = available_stacks()
    configs = {stack: policy_config(stack) for stack in stacks}
    header = ["Rule", *stacks, "What it checks", "Remediation"]
    rows = [_row(header), "|" + "---|" * len(header)]
    described = [(r.name, r.description, r.remediation) for r in RULES]
    described += [(r.name, r.description, r.remediation) for r in STACK_RULES]
    for name, description, remediation in described:
        levels = [effective_level(configs[s], name) for s in stacks]
        rows.append(_row([f"`{name}`", *levels, description, remediation]))
    return "\n".join(rows)


def _alerts() -> list[tuple[str, str, dict[str, Any]]]:
    """Every alerting rule of the production stack (both instances, and the replication
    rules as they would be with topology sentinel): name, where it applies, the rule."""
    seen: dict[str, list[str]] = {}
    found: dict[str, dict[str, Any]] = {}
    production = instances(load_stack_file("production"))
    replicated = production[0].model_copy(update={"topology": "sentinel", "min_replicas_to_write": 1})
    for instance in production:
        for rule in alerts.rules(instance):
            seen.setdefault(rule["alert"], []).append(instance.role)
            found.setdefault(rule["alert"], rule)
    for rule in alerts.rules(replicated):
        if rule["alert"] not in found:
            seen[rule["alert"]], found[rule["alert"]] = ["each, with topology sentinel"], rule
    return [(name, " and ".join(seen[name]), rule) for name, rule in found.items()]


def alert_table() -> str:
    """Every alert with its thresholds (production's) and its runbook."""
    rows = [_row(["Alert", "Instance", "Severity", "For", "Fires when", "What to do"]), "|" + "---|" * 6]
    for name, where, rule in _alerts():
        cells = [f"[`{name}`](../runbooks.md#{name.lower()})", where, rule["labels"]["severity"], rule["for"]]
        rows.append(_row([*cells, rule["annotations"]["summary"], rule["annotations"]["action"]]))
    return "\n".join(rows)


def runbooks() -> str:
    """One section per alert, the target of its `runbook_url` annotation."""
    sections = []
    for name, where, rule in _alerts():
        durable = " --instance durable" if where == "durable" else ""
        sections.append(
            f"## {name}\n\n"
            f"**{rule['labels']['severity']}**, after {rule['for']}; on {where}. "
            f"**Fires when:** {rule['annotations']['summary']}.\n\n"
            f"**Look:** `bizosaas-redis monitor --stack <stack>{durable}` grades the same thresholds now; "
            f"the rule (production's thresholds):\n\n```promql\n{rule['expr']}\n```\n\n"
            f"**Do:** {rule['annotations']['action']}."
        )
    return "\n\n".join(sections)


def load_results(folder: Path, name: str) -> dict[str, Any]:
    """A committed results file (`results/<name>.json`), written by the measurement that owns it."""
    path = folder / RESULTS_DIR / f"{name}.json"
    if not path.exists():
        raise DocsError(f"{path} is missing: the measurement that writes it has not been run and committed")
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def measured_under(results: dict[str, Any]) -> str:
    """The line under every measured table: which commit, when, on what machine, how."""
    box = results["machine"]
    return (
        f"Measured at commit `{results['commit']}` on {results['date']}: {box['cores']} cores, "
        f"{box['memory_gib']} GiB, kernel {box['kernel']}, Python {box['python']}, Docker {box['docker']}, "
        f"Redis {box['redis']}; {results['conditions']} (`{RESULTS_DIR}/{results['name']}.json`)."
    )


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.1f} min"


def _tiers(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The test tiers' rows of results/test-tiers.json (not the setup's)."""
    return [row for row in results["figures"] if row["command"].startswith("scripts/test")]


def tiers_table(folder: Path) -> str:
    """The cold setup and each test tier, from results/test-tiers.json (scripts/measure-tests)."""
    results = load_results(folder, "test-tiers")
    header = ["What", "Command", "Tests", "Runs", "Min", "Median", "Max"]
    rows = [_row(header), "|" + "---|" * len(header)]
    for row in results["figures"]:
        times = [_duration(row[key]) for key in ("min", "median", "max")]
        rows.append(_row([row["name"], f"`{row['command']}`", row["tests"], str(row["runs"]), *times]))
    tiers = _tiers(results)
    if len(tiers) > 1:
        total = [_duration(sum(row[key] for row in tiers)) for key in ("min", "median", "max")]
        rows.append(_row(["every tier (the whole suite)", "`scripts/test`", "", "", *total]))
    return "\n".join([*rows, "", measured_under(results)])


def whole_suite_seconds(folder: Path) -> float:
    """The slowest measured time of the whole suite: the sum of each tier's max."""
    return float(sum(row["max"] for row in _tiers(load_results(folder, "test-tiers"))))


# Units measured (shown with their unit); any other unit counts things (keys, writes, tasks).
MEASURES = {"s": 2, "ms": 2, "MB": 1, "k req/s": 1, "×": 2, "MB/s": 0}


def _spread(row: dict[str, Any]) -> tuple[float, float, float]:
    """A figure's min, median and max, from its runs (the stored ones are rounded)."""
    values = row["values"]
    return min(values), statistics.median(values), max(values)


def _amount(value: float, unit: str) -> str:
    return f"{value:.{MEASURES[unit]}f} {unit}" if unit in MEASURES else f"{value:.0f}"


def measured_table(folder: Path, name: str) -> str:
    """A results file of measurements with bounds (results/<name>.json, written by the test
    that asserts them): each figure's runs, min/median/max, and the bound with its reason."""
    results = load_results(folder, name)
    # A benchmark asserts nothing: its table has no bound column.
    bounded = any("bound" in row for row in results["figures"])
    header = ["What", "Runs", "Min", "Median", "Max", *(["Bound asserted in that run"] if bounded else [])]
    rows = [_row(header), "|" + "---|" * len(header)]
    for row in results["figures"]:
        unit = row["unit"]
        spread = [_amount(value, unit) for value in _spread(row)]
        reason = "set from measured runs" if row.get("bound_from") == "measured" else row.get("bound_from")
        bound = [f"{_amount(row['bound'], unit)} ({reason})" if "bound" in row else ""] if bounded else []
        rows.append(_row([row["name"], str(row["runs"]), *spread, *bound]))
    return "\n".join([*rows, "", measured_under(results)])


def _bare(value: float, unit: str) -> str:
    return f"{value:.{MEASURES.get(unit, 0)}f}"


def grid_table(folder: Path, name: str) -> str:
    """A results file whose figures each name a row and a column (a benchmark's grid: the
    paths by pipeline, the quantities by dataset size): the median, and its min–max over
    the runs when there were several. The row's or the column's label names the unit."""
    results = load_results(folder, name)
    cells: dict[str, dict[str, str]] = {}
    for row in results["figures"]:
        unit = row["unit"]
        least, median, most = _spread(row)
        cell = _bare(median, unit)
        if row["runs"] > 1:
            cell += f" ({_bare(least, unit)}–{_bare(most, unit)})"
        cells.setdefault(row["row"], {})[row["column"]] = cell
    columns = list(dict.fromkeys(column for found in cells.values() for column in found))
    rows = [_row(["", *columns]), "|" + "---|" * (len(columns) + 1)]
    rows += [_row([label, *(found.get(column, "") for column in columns)]) for label, found in cells.items()]
    return "\n".join([*rows, "", measured_under(results)])


# What the change matrix (tests/unit/test_change_matrix.py) found a key's change to do,
# worded for the table; the order is the table's.
EFFECTS = {
    "server replaced": "servers replaced",
    "server added": "a server added",
    "server removed": "a server removed",
    "server in place": "server containers updated in place",
    "server online": "set on the running servers",
    "sentinel replaced": "Sentinels replaced",
    "sentinel added": "Sentinels added",
    "sentinel online": "set on the running Sentinels",
}
# Which measured path (results/change-paths.json's groups) a key's effects take, the
# slowest first: a key that also replaces a server pauses writes as a replacement does.
PATHS = (("server replaced", "container replaced"), ("server in place", "container updated"))
BASES = {"staging": "staging", "sentinel": "staging, topology sentinel", "tls": "staging, TLS on"}


def _pauses(folder: Path) -> dict[str, str]:
    """Each path's longest pause in writes, over every change measured on it."""
    found: dict[str, list[float]] = {}
    for row in load_results(folder, "change-paths")["figures"]:
        if row["figure"] == "longest pause in writes":
            found.setdefault(row["group"], []).extend(row["values"])
    return {group: f"{_span(min(v), max(v))} ({group})" for group, v in found.items()}


def _span(least: float, most: float) -> str:
    """`least`–`most` seconds, in ms below a tenth of a second; one figure when they round alike."""
    unit, scale, digits = ("ms", 1000, 0) if most < 0.1 else ("s", 1, 2)
    low, high = f"{least * scale:.{digits}f}", f"{most * scale:.{digits}f}"
    return f"{low} {unit}" if low == high else f"{low}–{high} {unit}"


def change_matrix_table(folder: Path) -> str:
    """Every setting key changed alone (results/change-matrix.json): what `up` then does to
    the servers and Sentinels, whether Redis restarts, and the pause in writes measured on
    that path (results/change-paths.json)."""
    matrix, pauses = load_results(folder, "change-matrix"), _pauses(folder)
    header = ["Key", "Changed on", "What `up` does", "Restarts", "Longest pause in writes measured"]
    rows = [_row(header), "|" + "---|" * len(header)]
    for key in matrix["keys"]:
        effects = set(key["effects"])
        does = "; ".join(words for effect, words in EFFECTS.items() if effect in effects)
        restarted = " and ".join(who for who in ("servers", "Sentinels") if f"{who[:-1].lower()} replaced" in effects)
        path = next((group for effect, group in PATHS if effect in effects), None)
        if path is None:
            path = "container kept" if "server online" in effects else None
        pause = pauses.get(path, "") if path else "none: no server changes"
        does = does or "nothing running changes"
        rows.append(_row([f"`{key['key']}`", BASES[key["base"]], does, restarted or "no", pause]))
    under = measured_under(load_results(folder, "change-paths"))
    return "\n".join([*rows, "", f"Matrix of commit `{matrix['commit']}` ({RESULTS_DIR}/change-matrix.json). {under}"])


# The results files (results/<name>.json) whose figures the documents show, each as a table.
MEASURED = (
    "change-paths",
    "standalone-faults",
    "ha-faults",
    "layouts",
    "alerts-live",
    "smoke-timings",
    "deploy-times",
    "offline-images",
    "adoption",
    "quorum-alerts",
)
# The benchmarks' results files shown as a grid (grid_table).
GRIDS = ("consumer-paths", "growth", "durable-writes")
# Each generated block of the documents, rendered from the project folder it documents.
BLOCKS: dict[str, Callable[[Path], str]] = {
    "stacks-table": lambda _: stacks_table(),
    "config-table": lambda _: config_table(),
    "cli-reference": lambda _: cli_reference(),
    "outputs-table": lambda _: outputs_table(),
    "runbooks": lambda _: runbooks(),
    "policy-table": lambda _: policy_table(),
    "alert-table": lambda _: alert_table(),
    "test-tiers": tiers_table,
    "change-matrix": change_matrix_table,
    # Each results/<name>.json rendered as a table of the same name.
    **{name: functools.partial(measured_table, name=name) for name in MEASURED},
    **{name: functools.partial(grid_table, name=name) for name in GRIDS},
}


def _marker(name: str) -> tuple[str, str]:
    return f"<!-- {name}:start (generated by bizosaas-redis docs; do not edit) -->", f"<!-- {name}:end -->"


def documents(folder: Path) -> list[Path]:
    """The README and every page under docs/: where the generated blocks live."""
    return [folder / README, *sorted((folder / DOCS_DIR).rglob("*.md"))]


def update_docs(folder: Path, check: bool = False) -> list[Path]:
    """Rewrite each generated block in the one document that holds it; the documents that
    changed (with check, that would change, and nothing is written)."""
    texts = {path: path.read_text() for path in documents(folder)}
    for name, render in BLOCKS.items():
        start, end = _marker(name)
        pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.DOTALL)
        holders = [path for path, text in texts.items() if pattern.search(text)]
        if len(holders) != 1:
            where = ", ".join(str(path.relative_to(folder)) for path in holders) or "no document"
            raise DocsError(f"the {name} block is in {where}: it belongs in exactly one, between its markers")
        block = f"{start}\n{render(folder)}\n{end}"
        # Escaped: the block's backslashes must not be read as group references.
        texts[holders[0]] = pattern.sub(block.replace("\\", "\\\\"), texts[holders[0]])
    stale = [path for path, text in texts.items() if text != path.read_text()]
    if not check:
        for path in stale:
            path.write_text(texts[path])
    return stale
