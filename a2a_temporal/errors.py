"""User-facing errors: each carries one line that names the file, key or value at fault."""


class A2AError(Exception):
    """Base class of the errors a tool reports as ``error: <message>`` with a non-zero exit."""


class ConfigError(A2AError):
    """A config file or command-line override is unknown, mistyped or inconsistent."""


class DataError(A2AError):
    """A dataset, demo file or video cannot be used as given."""
