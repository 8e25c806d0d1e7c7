#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.train_policy``, installed as the ``a2a-train-policy`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.train_policy import main

if __name__ == "__main__":
    main()
