#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.predict_video``, installed as the ``a2a-predict-video`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.predict_video import main

if __name__ == "__main__":
    main()
