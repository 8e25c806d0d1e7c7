#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.learning_curves``, installed as the ``a2a-learning-curves`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.learning_curves import main

if __name__ == "__main__":
    main()
