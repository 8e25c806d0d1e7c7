#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.policy_table``, installed as the ``a2a-policy-table`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.policy_table import main

if __name__ == "__main__":
    main()
