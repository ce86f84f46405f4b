"""``python -m benchmarks [--quick]``: see benchmarks/run.py and docs/performance.md."""

import sys

from .run import main

sys.exit(main())
