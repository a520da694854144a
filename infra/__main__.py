"""Pulumi entry point (Pulumi.yaml `main: infra/`): the program lives in bizosaas_redis,
installed into ./venv from requirements.txt (`-e .`)."""

from bizosaas_redis_pulumi.program import main

main()
