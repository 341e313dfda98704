"""The node-agent's flag parser: Go's ``flag`` semantics, shared with ``inspect`` (``masqctl.goflags``)."""

from masqctl.goflags import Flag, FlagSet  # noqa: F401
