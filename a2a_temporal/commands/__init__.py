"""The command-line programs. Each module has a ``main(argv=None)``; they are installed as
console commands (``a2a-train-policy``, ``a2a-eval-policy``, ...) and are also runnable as
``python tools/<name>.py`` (a three-line launcher)."""
