#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.convert_dataset``, installed as the ``a2a-convert-dataset`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.convert_dataset import main

if __name__ == "__main__":
    main()
