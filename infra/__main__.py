"""Pulumi entry point (Pulumi.yaml `main: infra/`): the program lives in bizosaas_redis_pulumi,
installed into ./venv from uv.lock (Pulumi's uv toolchain runs it with `uv run`)."""

from bizosaas_redis_pulumi.program import main

main()
