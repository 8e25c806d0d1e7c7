#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.benchmark``, installed as the ``a2a-benchmark`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.benchmark import main

if __name__ == "__main__":
    main()
