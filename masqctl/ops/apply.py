"""Write a plan to the cluster safely: conflict check → backup → write → verify → rollback.

``write_plan`` runs the sequence and fills a ``WriteRecord`` step by step, so a caller that
catches the ``ApplyError`` of a failed step still knows what was done (a backup saved, the
write made). ``on_step(step, record)`` is called after each step (``backup``, ``written``,
``verified``, ``rolled-back``) so a command can tell the user as it happens.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from masqctl.analysis.verify import verify_rollout
from masqctl.cluster.gather import gather
from masqctl.cluster.live import configmap_write as cw
from masqctl.cluster.live.configmap_write import Desired
from masqctl.cluster.options import GatherOptions, NodeSelection, Progress
from masqctl.errors import ApplyError

STEPS = ("backup", "written", "verified", "rolled-back")


@dataclass
class WriteRecord:
    """What ``write_plan`` did so far. ``rollback_error``: the rollback was tried and failed."""

    backup: Any = None                  # configmap_write.Backup
    write: Any = None                   # configmap_write.WriteResult
    verify: Any = None                  # analysis.verify outcome
    rollback: Any = None                # configmap_write.WriteResult of the restore
    rollback_error: str | None = None

    def to_dict(self) -> dict:
        """The keys apply's JSON carries for the steps that happened."""
        doc: dict = {}
        if self.backup is not None:
            doc["backup"] = self.backup.to_dict()
        if self.write is not None:
            doc["written"] = True
            doc["write"] = {"action": self.write.action, "resource_version": self.write.resource_version}
        if self.verify is not None:
            doc["verify"] = self.verify.to_dict()
        if self.rollback is not None:
            doc["rollback"] = {"action": self.rollback.action, "resource_version": self.rollback.resource_version}
        elif self.rollback_error is not None:
            doc["rollback"] = {"error": self.rollback_error}
        return doc


def desired_of(plan) -> Desired:
    """What the write step makes of a plan: the ConfigMap's data, labels and annotations, or its
    deletion."""
    if plan.action == "delete":
        return Desired(plan.namespace, plan.name, None)
    meta = plan.new_object["metadata"]
    return Desired(plan.namespace, plan.name, dict(plan.new_object.get("data") or {}),
                   dict(meta.get("labels") or {}), dict(meta.get("annotations") or {}))


def write_plan(plan, snapshot, options: GatherOptions, *, backup_dir: str, environ: Mapping[str, str],
               verify: bool = True, timeout: float = 300.0, interval: float = 10.0, rollback: bool = False,
               progress: Progress | None = None, record: WriteRecord | None = None,
               on_step: Callable[[str, WriteRecord], None] | None = None) -> WriteRecord:
    """Write ``plan`` (made on ``snapshot``, gathered with ``options``) and verify it.

    E701 when the ConfigMap changed since the plan (nothing written); E710/E711 when verify
    fails (E711: agent pods crash), after restoring the backup when ``rollback``; E712 when
    that restore fails. ``environ`` is where the kubeconfig is found, as kubectl finds it.
    """
    record = record if record is not None else WriteRecord()
    step = on_step or (lambda name, rec: None)
    api = cw.core_api(options.kubeconfig, options.context, environ=environ)
    live = cw.read_configmap(api, plan.namespace, plan.name)
    live_rv = cw.resource_version(live)
    if live_rv != plan.resource_version:
        raise ApplyError(f"it changed since the plan was made (planned against resourceVersion "
                         f"{plan.resource_version or 'none: absent'}, now {live_rv or 'absent'}); nothing was written",
                         input=f"ConfigMap {plan.ref}", code="E701",
                         hint="re-run `masqctl apply` to plan against the current version")
    backup = record.backup = cw.write_backup(backup_dir, plan.namespace, plan.name, live, source=snapshot.source)
    step("backup", record)
    result = record.write = cw.write(api, desired_of(plan), plan.resource_version)
    step("written", record)
    if not verify:
        return record
    rules = plan.rules_after()
    baseline = [p for p in snapshot.pods if p.daemonset == plan.before.daemonset.name]
    base_options = dataclasses.replace(options, azure=False, capture=True)

    def observe(node_names):
        opts = base_options if node_names is None else dataclasses.replace(
            base_options, nodes=NodeSelection(names=tuple(node_names)))
        return gather(opts, None)

    outcome = record.verify = verify_rollout(rules, plan.before.daemonset.name, observe, baseline=baseline,
                                             timeout=timeout, interval=interval, progress=progress)
    step("verified", record)
    if outcome.ok:
        return record
    if rollback:
        try:
            record.rollback = cw.write(api, cw.desired_from_backup(backup), result.resource_version)
        except ApplyError as exc:
            record.rollback_error = exc.one_line()
            raise ApplyError(f"verify failed ({outcome.summary()}) and the rollback failed: {exc.message}",
                             input=exc.input, code="E712",
                             hint="restore by hand: " + "  or  ".join(backup.restore_commands())) from None
        step("rolled-back", record)
    code = "E711" if outcome.crashes else "E710"
    raise ApplyError(f"the change was written but verify failed: {outcome.summary()}"
                     + ("; it was rolled back" if rollback else ""), input=f"ConfigMap {plan.ref}", code=code,
                     hint=None if rollback else "restore with: " + "  or  ".join(backup.restore_commands()))
