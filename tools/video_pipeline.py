#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.video_pipeline``, installed as the ``a2a-video-pipeline`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.video_pipeline import main

if __name__ == "__main__":
    main()
