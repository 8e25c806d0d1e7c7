#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.train_video``, installed as the ``a2a-train-video`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.train_video import main

if __name__ == "__main__":
    main()
