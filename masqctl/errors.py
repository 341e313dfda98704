"""One error hierarchy for everything masqctl reports to a user.

Every error carries a short stable ``code``, the ``input`` it is about (a file, a flag,
a key, a line) and a ``hint``. Exit codes are decided here and only here:

* ``EXIT_OK`` (0): nothing wrong;
* ``EXIT_FAILED`` (1): problems found, or an operation failed (an invalid agent config,
  iptables refusing a payload);
* ``EXIT_USAGE`` (2): the command line or an input file is not usable.

Codes never change meaning. ``docs/errors.md`` lists them.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class MasqctlError(Exception):
    """Base of every error meant for a user (never shown with a traceback)."""

    code = "E000"
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, input: str | None = None, hint: str | None = None,
                 code: str | None = None):
        super().__init__(message)
        self.message = message
        self.input = input
        self.hint = hint
        if code is not None:
            self.code = code

    def one_line(self) -> str:
        """The error as one line: ``E104 ip-masq-agent line 3: CIDR "x" could not be parsed``."""
        where = f"{self.input}: " if self.input else ""
        return f"{self.code} {where}{self.message}"


class UsageError(MasqctlError):
    """A flag, argument or option value that cannot be used."""

    code = "E200"
    exit_code = EXIT_USAGE


class InputError(MasqctlError):
    """An input file (dump, bundle, ipset list) that cannot be read or parsed."""

    code = "E300"
    exit_code = EXIT_USAGE


class ConfigError(MasqctlError):
    """An agent config the real agent would refuse (it would crash or keep old rules).

    Exit status 1: the agent's operation fails on it. ``file``, ``line``, ``key`` and
    ``value`` say exactly where.
    """

    code = "E100"
    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None, value: object = None, hint: str | None = None,
                 code: str | None = None):
        where = file or ""
        if file and line:
            where = f"{file} line {line}"
        if key:
            where = f"{where} key {key}" if where else f"key {key}"
        super().__init__(message, input=where or None, hint=hint, code=code)
        self.file = file
        self.line = line
        self.key = key
        self.value = value


class IptablesError(MasqctlError):
    """iptables itself failed (binary missing, lock held, kernel refused)."""

    code = "E400"
    exit_code = EXIT_FAILED


class GatherError(MasqctlError):
    """Reading a live cluster failed (API unreachable, forbidden, timed out) as a whole.

    Per-node and per-piece failures are not errors: they are recorded in the snapshot and
    the rest continues. This is for failures that leave nothing to analyse.
    """

    code = "E600"
    exit_code = EXIT_FAILED


class ApplyError(MasqctlError):
    """Writing or verifying the user ConfigMap failed (conflict, refused, not converged)."""

    code = "E700"
    exit_code = EXIT_FAILED

