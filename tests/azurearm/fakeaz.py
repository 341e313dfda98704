"""A stand-in ``az`` executable, so the real ``AzureCliCredential`` runs its real code path.

Only the binary is a test double: ``AzureCliCredential`` finds it on ``PATH``, runs
``az account get-access-token --output json --resource R [--tenant T] [--subscription S]`` as it
would run the Azure CLI, and parses what it prints. masqctl runs ``az account show --output
json`` for the default subscription. The script answers both like the Azure CLI does (JSON on
stdout; when "not logged in", the CLI's message on stderr and exit status 1) and records every
invocation in ``calls``.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import dataclass
from pathlib import Path

_SCRIPT = r'''#!{python}
import json, sys, time
STATE = {state!r}
with open(STATE) as f:
    st = json.load(f)
args = sys.argv[1:]
with open(STATE + ".calls", "a") as f:
    f.write(json.dumps(args) + "\n")
if not st["logged_in"]:
    sys.stderr.write("ERROR: Please run 'az login' to setup account.\n")
    sys.exit(1)
if args[:2] == ["account", "get-access-token"]:
    exp = int(time.time()) + 3600
    print(json.dumps({{"accessToken": st["token"], "expiresOn": time.strftime("%Y-%m-%d %H:%M:%S.000000",
                     time.localtime(exp)), "expires_on": exp, "subscription": st["subscription"] or "",
                     "tenant": st["tenant"], "tokenType": "Bearer"}}, indent=2))
    sys.exit(0)
if args[:2] == ["account", "show"]:
    if not st["subscription"]:
        sys.stderr.write("ERROR: Please run 'az login' to setup account.\n")
        sys.exit(1)
    print(json.dumps({{"environmentName": "AzureCloud", "id": st["subscription"], "isDefault": True,
                      "name": st["subscription_name"], "state": "Enabled", "tenantId": st["tenant"],
                      "user": {{"name": "operator@example.com", "type": "user"}}}}, indent=2))
    sys.exit(0)
sys.stderr.write("ERROR: 'az " + " ".join(args) + "' is not handled by the test az\n")
sys.exit(2)
'''


@dataclass
class FakeAz:
    """``bin_dir`` holds ``az``; put it first on ``PATH``."""

    bin_dir: Path
    state_file: Path

    @classmethod
    def install(cls, directory: Path, *, token: str, subscription: str | None, tenant: str,
                subscription_name: str = "Contoso Production", logged_in: bool = True) -> "FakeAz":
        directory.mkdir(parents=True, exist_ok=True)
        fake = cls(directory, directory / "az-state.json")
        fake.configure(token=token, subscription=subscription, tenant=tenant,
                       subscription_name=subscription_name, logged_in=logged_in)
        script = directory / "az"
        script.write_text(_SCRIPT.format(python=sys.executable, state=str(fake.state_file)))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return fake

    def configure(self, **state: object) -> None:
        current = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        current.update(state)
        self.state_file.write_text(json.dumps(current))

    @property
    def calls(self) -> list[list[str]]:
        p = Path(str(self.state_file) + ".calls")
        if not p.exists():
            return []
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]

    def path_with(self, rest: str = "/usr/bin:/bin") -> str:
        return os.pathsep.join([str(self.bin_dir), rest])
