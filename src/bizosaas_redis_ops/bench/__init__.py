"""Benchmarks: numbers, never pass/fail. Each prints a table; `paths` and `growth` draw a chart.

- `smoke_timings`: the smoke suite and redis-benchmark against a deployed stack;
- `paths`: every consumer path of a disposable deployment side by side with the limit
  (a bare server on loopback) and the seed's compose container;
- `growth`: restart, replacement, fork and rewrite costs against the dataset size;
- `deploy_times`: each stack's `up`, `preview`, `refresh` and `destroy` with the engine.
"""

# Every name the benchmark gives (containers, volumes, network) starts with it.
NAME_PREFIX = "bizosaas-bench"
