#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.benchmark_video``, installed as the ``a2a-benchmark-video`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.benchmark_video import main

if __name__ == "__main__":
    main()
