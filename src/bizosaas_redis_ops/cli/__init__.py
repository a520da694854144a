"""`bizosaas-redis`: every operation on the Redis stacks, one command with subcommands,
declared by job: `deploy`, `check`, `data`, `bench`, `maintenance`; `root` holds the
group, the shared options and the error handling."""

from bizosaas_redis_ops.cli import bench, check, data, deploy, maintenance
from bizosaas_redis_ops.cli.root import CommandError, main

__all__ = ["CommandError", "bench", "check", "data", "deploy", "main", "maintenance"]
