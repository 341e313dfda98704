"""Runs the iptables binaries for the node-agent, and nothing else touches the kernel.

Only three operations exist: list one chain of the nat table (``iptables -w N -t nat -S
CHAIN``), feed one payload to ``iptables-restore --noflush --wait=N`` (one atomic commit),
and report failures as ``IptablesError`` with a stable code and a ``kind`` the loop uses
for retries and metrics:

* ``missing`` (E401): the binary cannot be executed;
* ``lock`` (E402): another program held the xtables lock longer than ``--iptables-wait``;
* ``refused`` (E403): iptables-restore refused the payload (the kernel or iptables said no;
  nothing was committed);
* ``list`` (E404): listing a chain failed for another reason.

``backend`` picks the binaries: ``""`` uses ``iptables``/``ip6tables`` from ``PATH`` (in the
image, a wrapper that selects the host's backend), ``legacy`` and ``nft`` the explicit
``iptables-legacy``/``iptables-nft`` variants.
"""

from __future__ import annotations

from masqctl.agent import spawn
from masqctl.errors import IptablesError

BACKENDS = ("", "legacy", "nft")
FAMILY_NAMES = {4: "ipv4", 6: "ipv6"}  # in logs and metric labels
LOCK_EXIT_STATUS = 4  # iptables' RESOURCE_PROBLEM: the xtables lock could not be taken


class IptablesFailure(IptablesError):
    """An iptables operation failed; ``kind`` is missing | lock | refused | list."""

    def __init__(self, message: str, *, kind: str, input: str | None = None, hint: str | None = None,
                 code: str):
        super().__init__(message, input=input, hint=hint, code=code)
        self.kind = kind


class Runner:
    def __init__(self, backend: str = "", wait: int = 5, env: dict | None = None):
        if backend not in BACKENDS:
            raise ValueError(f"unknown iptables backend {backend!r}")
        self.backend = backend
        self.wait = max(0, int(wait))
        self.env = env
        # iptables itself returns soon after the lock wait; this only guards against a hang.
        self.timeout = self.wait + 60
        self._legacy: dict[int, bool] = {}

    def binary(self, family: int, tool: str = "") -> str:
        """``tool`` is "" (iptables), "save" or "restore"."""
        base = "iptables" if family == 4 else "ip6tables"
        if self.backend:
            base += f"-{self.backend}"
        return f"{base}-{tool}" if tool else base

    def _run(self, argv: list[str], stdin: str | None, what: str) -> spawn.Completed:
        try:
            return spawn.run(argv, stdin.encode() if stdin is not None else None, env=self.env,
                             timeout=self.timeout, text=True)
        except FileNotFoundError:
            raise IptablesFailure(f"{argv[0]} is not installed or not on PATH", kind="missing",
                                  input=argv[0], code="E401",
                                  hint="install iptables (legacy and nft) in the image") from None
        except PermissionError as exc:
            raise IptablesFailure(f"{argv[0]} cannot be executed: {exc.strerror}", kind="missing",
                                  input=argv[0], code="E401") from None
        except spawn.Timeout:
            raise IptablesFailure(f"{what}: {argv[0]} did not finish within {self.timeout}s",
                                  kind="refused" if stdin is not None else "list", input=argv[0],
                                  code="E403" if stdin is not None else "E404") from None

    @staticmethod
    def _lock_problem(result: spawn.Completed) -> bool:
        return result.returncode == LOCK_EXIT_STATUS and "xtables lock" in (result.stderr or "")

    def _lock_failure(self, argv: list[str], result: spawn.Completed) -> IptablesFailure:
        return IptablesFailure(f"another program held the xtables lock for more than {self.wait}s",
                               kind="lock", input=argv[0], code="E402",
                               hint="kube-proxy or another agent is writing iptables; the agent retries")

    def list_chain(self, family: int, chain: str, table: str = "nat") -> list[str] | None:
        """The ``-A`` lines of ``chain`` as ``iptables -S`` prints them; None if the chain
        does not exist."""
        argv = [self.binary(family), "-w", str(self.wait), "-t", table, "-S", chain]
        result = self._run(argv, None, f"listing {table} {chain}")
        if result.returncode != 0:
            if self._lock_problem(result):
                raise self._lock_failure(argv, result)
            err = (result.stderr or "").strip()
            # iptables-legacy: "No chain/target/match by that name"; iptables-nft 1.8.9 reports
            # a missing chain as "... is incompatible, use 'nft' tool".
            if result.returncode == 1 and ("No chain" in err or "incompatible" in err
                                           or "does not exist" in err):
                return None
            raise IptablesFailure(f"listing {table} {chain} failed (exit {result.returncode}): "
                                  f"{_last_line(err)}", kind="list", input=argv[0], code="E404")
        prefix = f"-A {chain} "
        return [line for line in result.stdout.splitlines() if line.startswith(prefix)]

    def is_legacy(self, family: int) -> bool:
        """Whether the binaries in use talk to the legacy (whole-table) kernel interface."""
        if self.backend:
            return self.backend == "legacy"
        if family not in self._legacy:
            result = self._run([self.binary(family), "--version"], None, "version")
            self._legacy[family] = "legacy" in result.stdout
        return self._legacy[family]

    def list_chains(self, family: int, chains: tuple[str, ...], table: str = "nat") -> dict[str, list[str] | None]:
        """``list_chain`` for several chains. With the legacy backend every listing fetches
        the whole table from the kernel, so one ``iptables-save -t TABLE`` serves them all;
        with nft, listing a chain fetches only that chain."""
        if not self.is_legacy(family):
            return {chain: self.list_chain(family, chain, table) for chain in chains}
        argv = [self.binary(family, "save"), "-t", table]
        result = self._run(argv, None, f"listing {table}")
        if result.returncode != 0:
            if self._lock_problem(result):
                raise self._lock_failure(argv, result)
            raise IptablesFailure(f"listing {table} failed (exit {result.returncode}): "
                                  f"{_last_line(result.stderr or '')}", kind="list", input=argv[0], code="E404")
        found: dict[str, list[str] | None] = {chain: None for chain in chains}
        prefixes = {f"-A {chain} ": chain for chain in chains}
        for line in result.stdout.splitlines():
            if line.startswith(":"):
                name = line[1:].split(" ", 1)[0]
                if name in found and found[name] is None:
                    found[name] = []
            elif line.startswith("-A "):
                chain = prefixes.get(line[:line.find(" ", 3) + 1])
                if chain is not None:
                    found[chain].append(line)
        return found

    def restore(self, family: int, payload: str) -> None:
        """``iptables-restore --noflush``: one commit; on failure nothing is applied."""
        argv = [self.binary(family, "restore"), "--noflush", f"--wait={self.wait}"]
        result = self._run(argv, payload, "restore")
        if result.returncode != 0:
            if self._lock_problem(result):
                raise self._lock_failure(argv, result)
            raise IptablesFailure(f"iptables-restore refused the payload (exit {result.returncode}): "
                                  f"{_last_line(result.stderr or '')}", kind="refused", input=argv[0],
                                  code="E403",
                                  hint="nothing was committed; check the kernel modules (nat, addrtype, "
                                       "comment, MASQUERADE) and the iptables backend")


def references(postrouting_lines, chain: str) -> list[str]:
    """POSTROUTING lines whose target is ``chain``, as printed: the text the daemon watches
    between syncs (the jump, and any other rule someone added that jumps to the chain)."""
    suffix = f" -j {chain}"
    return [ln for ln in postrouting_lines if ln.endswith(suffix) or f"{suffix} " in ln]


def _last_line(text: str) -> str:
    """iptables' own message on one line (its warnings about the other backend left out)."""
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip() and not ln.startswith("# Warning")]
    return "; ".join(lines[-3:]) if lines else "no message"
