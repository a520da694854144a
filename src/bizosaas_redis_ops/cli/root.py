"""`bizosaas-redis`: every operation on the Redis stacks, one command with subcommands.

Exit codes: 0 success; 1 a check failed or an expected error (one line on stderr);
2 bad usage, or Redis unusable (smoke), or a CRIT metric (monitor); 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from bizosaas_redis.errors import BizosaasRedisError
from bizosaas_redis.settings import available_stacks

if TYPE_CHECKING:
    pass

F = TypeVar("F", bound=Callable[..., Any])


class CommandError(BizosaasRedisError):
    """A failure the command itself detects (bad combination of arguments, failed checks)."""


# --- shared options, declared once ---------------------------------------------------


def stack_option(
    required: bool = True, help: str = "stack name (Pulumi.<stack>.yaml)", default: str | None = None
) -> Callable[[F], F]:
    # Click treats an explicit default=None as a default given, so pass one only when there is one.
    defaults: dict[str, Any] = {"default": default, "show_default": True} if default else {"required": required}
    # Outside a project there is no stack to choose: the command says so when it looks one up.
    stacks = available_stacks()
    return click.option("--stack", type=click.Choice(stacks) if stacks else str, help=help, **defaults)


instance_option = click.option(
    "--instance",
    type=click.Choice(["cache", "durable"]),
    default="cache",
    show_default=True,
    help="with layout split: the cache instance or the durable one (broker, streams, sessions)",
)
json_option = click.option("--json", "as_json", is_flag=True, help="print JSON for machines")
yes_option = click.option("--yes", is_flag=True, help="do not ask before changing production")
url_option = click.option(
    "--url",
    envvar="REDIS_URL",
    help="redis[s]://user:password@host:port/db; default $REDIS_URL (prefer it: a command line shows in ps)",
)


def one_line(exc: BaseException) -> str:
    """The message of a library error, as one line."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


class CliCommand(click.Command):
    """Turns every expected failure into one line on stderr and its exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        import docker.errors
        import redis

        name = ctx.command_path
        try:
            return super().invoke(ctx)
        except BizosaasRedisError as exc:
            _fail(name, str(exc), exc.exit_code)
        except redis.RedisError as exc:
            _fail(name, f"Redis refused: {one_line(exc)}", 1)
        except docker.errors.DockerException as exc:
            _fail(name, f"Docker: {one_line(exc)}", 1)
        except KeyboardInterrupt:
            _fail(name, "interrupted", 130)
        except Exception as exc:
            # The Automation API's errors carry the Pulumi CLI's own message.
            if type(exc).__module__.startswith("pulumi.automation"):
                from bizosaas_redis_ops.deploy.pulumi_stack import engine_errors

                _fail(name, f"pulumi failed: {engine_errors(exc)}", 1)
            raise


class Cli(click.Group):
    command_class = CliCommand
    group_class = type  # subgroups are Cli too


def _fail(command: str, message: str, code: int) -> None:
    click.echo(f"{command}: {message}", err=True)
    sys.exit(code)


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
def main() -> None:
    """Deploy, verify, test, watch, back up and restore the BizOSaaS Redis stacks."""
    # `bizosaas-redis … | head` ends quietly, as command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)


# --- Pulumi: preview, up, destroy, outputs ------------------------------------------------
