"""`python -m bizosaas_redis_ops.cli`: the bizosaas-redis command."""

import os
import sys

from bizosaas_redis_ops.cli import main

main(prog_name=os.path.basename(sys.argv[0]))
