"""Benchmarks of pytest-otto against raw asyncssh, bash and pytest-testinfra (issue 7).

Not part of the test suite. Run ``python -m benchmarks`` (full, about 7 minutes on
2 cores) or ``python -m benchmarks --quick`` (smoke test, 30-60 s) from
the repository root, as root (it starts real sshd servers on 127.0.2.x).
Results: a table on stdout and the raw figures in ``benchmarks/results/``.
See docs/performance.md.
"""
