"""The one root of every expected failure.

Anything a user can cause (a bad setting, a missing engine, a refused restore) raises a
subclass; the command line prints its message and exits with its `exit_code`, never a
traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class BizosaasRedisError(Exception):
    exit_code = 1
