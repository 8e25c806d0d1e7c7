#!/usr/bin/env python
"""Launcher of ``a2a_temporal.commands.render_videos``, installed as the ``a2a-render-videos`` command.

See that module (or ``--help``) for usage."""
from a2a_temporal.commands.render_videos import main

if __name__ == "__main__":
    main()
