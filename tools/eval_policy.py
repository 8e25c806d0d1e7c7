#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.eval_policy``, installed as the ``a2a-eval-policy`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.eval_policy import main

if __name__ == "__main__":
    main()
