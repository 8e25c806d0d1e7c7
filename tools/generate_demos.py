#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.generate_demos``, installed as the ``a2a-generate-demos`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.generate_demos import main

if __name__ == "__main__":
    main()
