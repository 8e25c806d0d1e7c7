#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.train_vae``, installed as the ``a2a-train-vae`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.train_vae import main

if __name__ == "__main__":
    main()
