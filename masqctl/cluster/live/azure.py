"""Live Azure facts: the AKS cluster and its virtual networks, read from Azure Resource Manager.

``gather_azure(options, raw)`` fills ``raw.aks`` with the JSON ``az aks show`` prints and
``raw.vnets`` (file stem → ``az network vnet show`` JSON, peerings included), using
azure-identity, azure-mgmt-containerservice and azure-mgmt-network (imported here, only when
called). Azure is optional: nothing here raises because Azure is unreachable, unauthorised or
incomplete; the reason goes to ``raw.missing`` under a ``MissingKey`` (``azure``,
``azure.cluster``, ``azure.vnets``) or ``azure.vnets/<stem>``, and what could be read is kept.
Only contradictory options and names ARM could never accept are errors (``UsageError`` E620–E624,
see ``check_azure_options``).

How things are found (docs/azure.md says the same for operators):

* subscription: ``options.subscription`` (an ID, or a name looked up in ``GET /subscriptions``),
  else the subscription of a ``--cluster`` resource ID, else the Azure CLI's default
  (``az account show``);
* cluster: ``-g`` and ``--cluster`` → read directly; otherwise the clusters of the resource group
  (``-g``) or subscription are listed and matched by name (``--cluster``) or against the
  kubeconfig context (``masqctl.cluster.live.azure_discovery``);
* VNets: each Linux pool's ``vnetSubnetID`` and ``podSubnetID`` name a VNet (any resource group
  or subscription; the union is read); a pool without ``vnetSubnetID`` uses the AKS-managed
  VNet, found by listing the VNets of ``nodeResourceGroup``. Subnets and peerings come embedded
  in the VNet; when ARM leaves them out (or a peering lacks its state) they are listed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from masqctl import __version__
from masqctl.cluster.armid import ResourceId, cluster_parts, parse_resource_id, subnet_parts, vnet_stems
from masqctl.cluster.live.azure_discovery import Candidate, KubeHints, kube_hints, match_cluster
from masqctl.cluster.live.azure_json import is_windows, peering_lacks_details, serialise_cluster, serialise_vnet
from masqctl.cluster.model import MissingKey
from masqctl.cluster.options import GatherOptions
from masqctl.cluster.raw import RawCluster
from masqctl.errors import UsageError

E_CLUSTER_ID = "E620"       # --cluster resource ID malformed, or contradicting -g/--subscription
E_ARM_ENDPOINT = "E621"     # the ARM endpoint is not an absolute https:// URL
E_NO_AZURE = "E622"         # Azure flags together with --no-azure
E_BLANK = "E623"            # --subscription / -g / --cluster given but empty
E_NAME = "E624"             # -g / --cluster is not a valid resource group / AKS cluster name

PUBLIC_ARM = "https://management.azure.com"
DEFAULT_KUBECONFIG = "~/.kube/config"
SUBSCRIPTIONS_API_VERSION = "2022-12-01"
AZ_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10      # seconds to open a connection to ARM (azure-core's default is 300)
READ_TIMEOUT = 60         # seconds to wait for an ARM answer (default 300)

# ARM's own rules: AKS names are 1-63 letters, digits, '-' and '_' (starting and ending with a letter or
# digit); resource group names are 1-90 letters (any script), digits, '_', '-', '.', '(' and ')', not ending in '.'.
_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9](?:[-_A-Za-z0-9]{0,61}[A-Za-z0-9])?$")
_RG_NAME = re.compile(r"^[-\w.()]{0,89}[-\w()]$")
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

READ_CLUSTER = "Microsoft.ContainerService/managedClusters/read"
READ_VNET = "Microsoft.Network/virtualNetworks/read"
READ_SUBNETS = "Microsoft.Network/virtualNetworks/subnets/read"
READ_PEERINGS = "Microsoft.Network/virtualNetworks/virtualNetworkPeerings/read"
READ_SUBSCRIPTIONS = "Microsoft.Resources/subscriptions/read"


# --------------------------------------------------------------------------- options


def check_azure_options(options: GatherOptions) -> None:
    """Raise ``UsageError`` for Azure options that contradict each other (the CLI may call this
    before gathering anything; ``gather_azure`` calls it too)."""
    given = {"--subscription": options.subscription, "-g/--resource-group": options.resource_group,
             "--cluster": options.cluster}
    for flag, value in given.items():
        if value is not None and not value.strip():
            raise UsageError("must not be empty", input=f"{flag} {value!r}", code=E_BLANK)
    if not options.azure and options.bundle is None:
        named = [f for f, v in given.items() if v is not None]
        if named:
            raise UsageError(f"{' and '.join(named)} cannot be used with --no-azure", input="--no-azure",
                             code=E_NO_AZURE, hint="drop --no-azure to read Azure, or drop the Azure flags")
    if options.resource_group is not None and not _RG_NAME.match(options.resource_group.strip()):
        raise UsageError("not a resource group name (1-90 letters, digits, '_', '-', '.', '(', ')'; not ending "
                         "in '.')", input=f"-g {options.resource_group}", code=E_NAME)
    cluster_name = options.cluster.strip() if options.cluster is not None else None
    if cluster_name and not cluster_name.startswith("/") and not _CLUSTER_NAME.match(cluster_name):
        raise UsageError("not an AKS cluster name (1-63 letters, digits, '-' and '_', starting and ending with a "
                         "letter or digit) nor a resource ID", input=f"--cluster {options.cluster}", code=E_NAME)
    if options.arm_endpoint is not None:
        u = urllib.parse.urlsplit(options.arm_endpoint)
        if u.scheme != "https" or not u.hostname:
            raise UsageError("the ARM endpoint must be an absolute https:// URL (bearer tokens are only sent "
                             "over TLS)", input=f"ARM endpoint {options.arm_endpoint}", code=E_ARM_ENDPOINT)
    cluster = options.cluster
    if cluster is not None and cluster.strip().startswith("/"):
        rid = cluster_parts(cluster)
        if rid is None:
            raise UsageError("not a managed cluster resource ID (/subscriptions/SUB/resourceGroups/RG/providers/"
                             "Microsoft.ContainerService/managedClusters/NAME) nor a cluster name",
                             input=f"--cluster {cluster}", code=E_CLUSTER_ID)
        if options.resource_group and options.resource_group.lower() != rid.resource_group.lower():
            raise UsageError(f"the resource ID names resource group {rid.resource_group!r}, but -g says "
                             f"{options.resource_group!r}", input=f"--cluster {cluster}", code=E_CLUSTER_ID,
                             hint="give one of them")
        if (options.subscription and _GUID.match(options.subscription)
                and options.subscription.lower() != rid.subscription.lower()):
            raise UsageError(f"the resource ID names subscription {rid.subscription}, but --subscription says "
                             f"{options.subscription}", input=f"--cluster {cluster}", code=E_CLUSTER_ID,
                             hint="give one of them")


def _scopes_for(endpoint: str) -> list[str]:
    """The token scope for an ARM endpoint: the known clouds' audiences, else ``<endpoint>/.default``."""
    try:
        from azure.core import AzureClouds
        from azure.mgmt.core.tools import get_arm_endpoints

        for cloud in AzureClouds:
            known = get_arm_endpoints(cloud)
            if known["resource_manager"].rstrip("/").lower() == endpoint.rstrip("/").lower():
                return list(known["credential_scopes"])
    except (ImportError, KeyError, AttributeError):
        pass
    return [endpoint.rstrip("/") + "/.default"]


def _one_line(text: object, limit: int = 400) -> str:
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[:limit - 1] + "…"


# --------------------------------------------------------------------------- the gatherer


class _Stop(Exception):
    """Azure gathering cannot continue (reason already recorded under ``azure``)."""


@dataclass
class _VNetRead:
    rid: ResourceId
    vnet: Any = None
    subnets: Any = None
    peerings: Any = None
    problems: list[str] = field(default_factory=list)


def gather_azure(options: GatherOptions, raw: RawCluster, *, environ: Mapping[str, str] | None = None) -> None:
    """Fill ``raw.aks`` / ``raw.vnets`` from ARM, or record in ``raw.missing`` why not.

    ``environ`` is where ``KUBECONFIG`` and ``HOME`` are looked up to match the kubeconfig context
    to a cluster, as the Kubernetes gathering finds the kubeconfig (default: the process environment).
    """
    check_azure_options(options)
    g = _Gatherer(options, raw, os.environ if environ is None else environ)
    try:
        g.run()
    except _Stop:
        pass
    finally:
        g.close()
    if raw.aks is None and not raw.vnets and MissingKey.AZURE not in raw.missing:
        raw.missing[MissingKey.AZURE] = (raw.missing.get(MissingKey.AZURE_CLUSTER)
                                         or "no Azure facts were read")


class _Gatherer:
    def __init__(self, options: GatherOptions, raw: RawCluster, environ: Mapping[str, str]):
        self.options = options
        self.raw = raw
        self.environ = environ
        self.endpoint = (options.arm_endpoint or PUBLIC_ARM).rstrip("/")
        self.scopes = _scopes_for(self.endpoint)
        self._credential: Any = None
        self._clients: dict[tuple[str, str], Any] = {}

    # ------------------------------------------------------------------ plumbing

    def close(self) -> None:
        for c in self._clients.values():
            try:
                c.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass
        if self._credential is not None and hasattr(self._credential, "close"):
            try:
                self._credential.close()
            except Exception:  # noqa: BLE001
                pass

    def stop(self, reason: str) -> None:
        self.raw.missing[MissingKey.AZURE] = reason
        raise _Stop(reason)

    def credential(self) -> Any:
        if self._credential is None:
            if self.options.azure_auth == "default":
                from azure.identity import DefaultAzureCredential

                self._credential = DefaultAzureCredential()
            else:
                from azure.identity import AzureCliCredential

                self._credential = AzureCliCredential(process_timeout=int(AZ_TIMEOUT))
        return self._credential

    def _client_kwargs(self) -> dict:

        kw: dict[str, Any] = {"user_agent": f"masqctl/{__version__}", "connection_timeout": CONNECT_TIMEOUT,
                              "read_timeout": READ_TIMEOUT}
        if self.options.arm_endpoint is not None:
            kw["base_url"] = self.endpoint
            kw["credential_scopes"] = self.scopes
        return kw

    def containers(self, subscription: str) -> Any:
        key = ("cs", subscription.lower())
        if key not in self._clients:
            from azure.mgmt.containerservice import ContainerServiceClient

            self._clients[key] = ContainerServiceClient(self.credential(), subscription, **self._client_kwargs())
        return self._clients[key]

    def network(self, subscription: str) -> Any:
        key = ("net", subscription.lower())
        if key not in self._clients:
            from azure.mgmt.network import NetworkManagementClient

            self._clients[key] = NetworkManagementClient(self.credential(), subscription, **self._client_kwargs())
        return self._clients[key]

    def _no_credentials_hint(self) -> str:
        if self.options.azure_auth == "default":
            return ("DefaultAzureCredential found none: set AZURE_TENANT_ID, AZURE_CLIENT_ID and "
                    "AZURE_CLIENT_SECRET, use a workload or managed identity, or `az login`")
        return "`az login` first, or --azure-auth default"

    def call(self, fn: Callable[[], Any], *, action: str, scope: str, what: str) -> tuple[bool, Any]:
        """Run one ARM read. ``(True, value)``, or ``(False, reason)`` for a failure that concerns
        only this read (403, 404, other HTTP statuses). Failures that concern every read (no
        credentials, sign-in failed, 401, ARM unreachable) stop gathering (``_Stop``)."""
        from azure.core.exceptions import AzureError, ClientAuthenticationError, HttpResponseError, ServiceRequestError
        from azure.identity import CredentialUnavailableError

        try:
            return True, fn()
        except CredentialUnavailableError as e:
            self.stop(f"no credentials: {_one_line(e.message, 300)}: {self._no_credentials_hint()}")
        except HttpResponseError as e:
            if e.response is None:
                # raised by the credential, not by ARM
                if isinstance(e, ClientAuthenticationError):
                    failed, text = _credential_failure(e.message)
                    if failed:
                        self.stop(f"sign-in failed ({self._auth_name()}): {text}")
                    self.stop(f"no credentials: {text}: {self._no_credentials_hint()}")
                return False, f"reading {what} failed: {_one_line(e.message)}"
            status = e.status_code
            code, msg = _arm_error(e)
            if status == 401:
                self.stop(f"401 from ARM at {self.endpoint}: the token was refused ({code}: {msg}); check the "
                          f"tenant of the identity ({self._auth_name()})")
            if status == 403:
                return False, (f"403 from ARM: the identity lacks {action} on {scope} ({code}); grant it Reader "
                               f"there (docs/azure.md lists the actions)")
            if status == 404:
                return False, f"404 from ARM: {what} not found ({code}: {msg})"
            return False, f"{status} from ARM reading {what} ({code}: {msg})"
        except ServiceRequestError as e:
            self.stop(f"cannot reach ARM at {self.endpoint}: {_one_line(e.message, 300)}")
        except AzureError as e:
            return False, f"reading {what} failed: {_one_line(e.message)}"
        raise AssertionError("unreachable")

    def _auth_name(self) -> str:
        return "DefaultAzureCredential" if self.options.azure_auth == "default" else "Azure CLI login"

    # ------------------------------------------------------------------ steps

    def run(self) -> None:
        subscription = self.subscription()
        mc = self.cluster(subscription)
        if mc is None:
            self.raw.missing.setdefault(MissingKey.AZURE_VNETS, "not read: the cluster is not known (see "
                                                                "azure.cluster)")
            return
        self.raw.aks = serialise_cluster(mc)
        self.vnets(mc, subscription)

    # subscription ------------------------------------------------------

    def subscription(self) -> str:
        opt = self.options.subscription
        rid = cluster_parts(self.options.cluster) if self.options.cluster else None
        if opt is not None:
            opt = opt.strip()
            if _GUID.match(opt):
                return opt
            found = self.subscription_by_name(opt)
            if rid is not None and found.lower() != rid.subscription.lower():
                raise UsageError(f"the resource ID names subscription {rid.subscription}, but --subscription "
                                 f"{opt!r} is {found}", input=f"--cluster {self.options.cluster}",
                                 code=E_CLUSTER_ID)
            return found
        if rid is not None:
            return rid.subscription
        sub, why = _az_default_subscription()
        if sub is None:
            if why == "not logged in":
                self.stop(f"no credentials: the Azure CLI is not logged in: {self._no_credentials_hint()}")
            self.stop(f"no subscription: pass --subscription, or choose a default with `az login` / "
                      f"`az account set` ({why})")
        return sub

    def subscription_by_name(self, name: str) -> str:
        ok, value = self.call(lambda: self._list_subscriptions(), action=READ_SUBSCRIPTIONS, scope="/subscriptions",
                              what="the subscriptions")
        if not ok:
            self.stop(f"no subscription: cannot look up subscription {name!r} by name: {value}; pass its ID")
        hits = [s for s in value if str(s.get("displayName", "")).lower() == name.lower()]
        if len(hits) == 1 and hits[0].get("subscriptionId"):
            return hits[0]["subscriptionId"]
        names = ", ".join(sorted(f"{s.get('displayName')} ({s.get('subscriptionId')})" for s in value)) or "none"
        if len(hits) > 1:
            self.stop(f"no subscription: {len(hits)} subscriptions are named {name!r}: pass the ID of one "
                      f"({names})")
        self.stop(f"no subscription: none named {name!r} is visible to this identity (visible: {names})")
        raise AssertionError("unreachable")

    def _list_subscriptions(self) -> list[dict]:
        from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
        from azure.core.pipeline import policies
        from azure.core.rest import HttpRequest
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import ARMChallengeAuthenticationPolicy


        client = ARMPipelineClient(base_url=self.endpoint, policies=[
            policies.RequestIdPolicy(), policies.HeadersPolicy(),
            policies.UserAgentPolicy(user_agent=f"masqctl/{__version__}"), policies.RedirectPolicy(),
            policies.RetryPolicy(), ARMChallengeAuthenticationPolicy(self.credential(), *self.scopes),
        ], connection_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT)
        out: list[dict] = []
        url: str | None = f"{self.endpoint}/subscriptions?api-version={SUBSCRIPTIONS_API_VERSION}"
        with client:
            while url:
                resp = client.send_request(HttpRequest("GET", url))
                if resp.status_code == 401:
                    raise ClientAuthenticationError(response=resp)
                if resp.status_code >= 400:
                    raise HttpResponseError(response=resp)
                body = resp.json()
                out.extend(v for v in body.get("value", []) if isinstance(v, dict))
                url = body.get("nextLink")
        return out

    # cluster -----------------------------------------------------------

    def cluster(self, subscription: str) -> Any:
        opts = self.options
        rid = cluster_parts(opts.cluster) if opts.cluster else None
        rg = rid.resource_group if rid else (opts.resource_group.strip() if opts.resource_group else None)
        name = rid.name if rid else (opts.cluster.strip() if opts.cluster else None)
        cs = self.containers(subscription)
        if name and rg:
            scope = (f"/subscriptions/{subscription}/resourceGroups/{rg}/providers/Microsoft.ContainerService/"
                     f"managedClusters/{name}")
            ok, value = self.call(lambda: cs.managed_clusters.get(rg, name), action=READ_CLUSTER, scope=scope,
                                  what=f"AKS cluster {name} in resource group {rg} (subscription {subscription})")
            if not ok:
                self.raw.missing[MissingKey.AZURE_CLUSTER] = value
                return None
            self._origin_cluster(value, "as given")
            return value
        return self.discover(subscription, rg, name)

    def _origin_cluster(self, mc: Any, how: str) -> None:
        rg = (parse_resource_id(getattr(mc, "id", None)) or ResourceId("?", "?", "", ())).resource_group
        self.raw.origin["aks"] = f"Azure Resource Manager (managedClusters {rg}/{mc.name}, {how})"

    def _hints(self) -> KubeHints:
        context = self.options.context
        if context is None and self.raw.source.startswith("context "):
            context = self.raw.source[len("context "):].strip() or None
        server = self.raw.manifest.get("server") if isinstance(self.raw.manifest, dict) else None
        # the kubeconfig the Kubernetes gathering read: --kubeconfig, else the KUBECONFIG list, else ~/.kube/config
        kubeconfig = self.options.kubeconfig or self.environ.get("KUBECONFIG") or None
        home = self.environ.get("HOME")
        default = os.path.join(home, ".kube", "config") if home else DEFAULT_KUBECONFIG
        return kube_hints(kubeconfig, context, default_path=default,
                          server=server if isinstance(server, str) else None)

    def discover(self, subscription: str, rg: str | None, name: str | None) -> Any:
        cs = self.containers(subscription)
        scope = f"/subscriptions/{subscription}" + (f"/resourceGroups/{rg}" if rg else "")
        where = f"resource group {rg}" if rg else f"subscription {subscription}"
        hints = self._hints() if not name else KubeHints()
        looking_for = f"cluster {name!r}" if name else f"the cluster of the {hints.describe()}"
        lister = (lambda: list(cs.managed_clusters.list_by_resource_group(rg))) if rg else (
            lambda: list(cs.managed_clusters.list()))
        ok, value = self.call(lister, action=READ_CLUSTER, scope=scope, what=f"the AKS clusters in {where}")
        if not ok:
            pass_flags = "pass -g RG --cluster NAME" if not rg else "pass --cluster NAME too"
            self.raw.missing[MissingKey.AZURE_CLUSTER] = (f"cannot list AKS clusters in {where} to find {looking_for}: "
                                                          f"{value}; {pass_flags}")
            return None
        models = value
        cands = []
        for mc in models:
            r = parse_resource_id(getattr(mc, "id", None))
            fqdns = tuple(f for f in (getattr(mc, "fqdn", None), getattr(mc, "private_fqdn", None),
                                      getattr(mc, "azure_portal_fqdn", None)) if f)
            cands.append(Candidate(getattr(mc, "id", "") or "", mc.name, r.resource_group if r else "?", fqdns))
        by_id = {c.id.lower(): m for c, m in zip(cands, models)}
        listed = ", ".join(sorted(c.ref for c in cands)) or "none"

        def pick(c: Candidate, how: str) -> Any:
            mc = by_id[c.id.lower()]
            self._origin_cluster(mc, how)
            return mc

        if name:
            hits = [c for c in cands if c.name.lower() == name.lower()]
            if len(hits) == 1:
                return pick(hits[0], f"found by name in {where}")
            if hits:
                self.raw.missing[MissingKey.AZURE_CLUSTER] = (
                    f"{len(hits)} AKS clusters are named {name!r} in {where} "
                    f"({', '.join(sorted(h.ref for h in hits))}); pass -g to choose")
            else:
                self.raw.missing[MissingKey.AZURE_CLUSTER] = (
                    f"no AKS cluster named {name!r} in {where} (clusters there: {listed})")
            return None

        if hints.empty:
            if rg and len(cands) == 1:
                return pick(cands[0], f"the only cluster in resource group {rg}")
            extra = f" ({hints.problem})" if hints.problem else ""
            self.raw.missing[MissingKey.AZURE_CLUSTER] = (
                f"cannot tell which AKS cluster to read: no kubeconfig context to match{extra}; pass "
                f"{'--cluster NAME' if rg else '-g RG --cluster NAME'} (clusters in {where}: {listed})")
            return None
        m = match_cluster(cands, hints)
        if m.chosen is not None:
            basis = {"server": "its API server", "user": "its kubeconfig user",
                     "name": "its name"}.get(m.basis or "", m.basis)
            return pick(m.chosen, f"matched to the {hints.describe()} by {basis}")
        if m.ambiguous:
            self.raw.missing[MissingKey.AZURE_CLUSTER] = (
                f"ambiguous: the {hints.describe()} matches {len(m.ambiguous)} AKS clusters in {where} "
                f"({', '.join(sorted(c.ref for c in m.ambiguous))}); pass -g and --cluster to choose")
            return None
        extra = f"; kubeconfig: {hints.problem}" if hints.problem else ""
        self.raw.missing[MissingKey.AZURE_CLUSTER] = (
            f"no AKS cluster in {where} matches the {hints.describe()} (by API server FQDN, kubeconfig user or "
            f"name; clusters there: {listed}){extra}; pass {'--cluster NAME' if rg else '-g RG --cluster NAME'}")
        return None

    # VNets -------------------------------------------------------------

    def vnets(self, mc: Any, subscription: str) -> None:
        pools = [p for p in (getattr(mc, "agent_pool_profiles", None) or []) if not is_windows(p)]
        wanted: dict[str, ResourceId] = {}
        problems: list[str] = []
        managed = not pools
        for p in pools:
            if not getattr(p, "vnet_subnet_id", None):
                managed = True
            for label, sid in (("vnetSubnetID", getattr(p, "vnet_subnet_id", None)),
                               ("podSubnetID", getattr(p, "pod_subnet_id", None))):
                if not sid:
                    continue
                rid = subnet_parts(sid)
                if rid is None:
                    problems.append(f"agent pool {p.name}: {label} {sid!r} is not a subnet resource ID")
                    continue
                wanted.setdefault(rid.parent().text.lower(), rid.parent())

        reads: list[_VNetRead] = []
        if managed:
            node_rg = getattr(mc, "node_resource_group", None)
            if not node_rg:
                problems.append("the cluster uses the AKS-managed VNet but has no nodeResourceGroup to find it in")
            else:
                net = self.network(subscription)
                scope = f"/subscriptions/{subscription}/resourceGroups/{node_rg}"
                ok, value = self.call(lambda: list(net.virtual_networks.list(node_rg)), action=READ_VNET,
                                      scope=scope, what=f"the virtual networks in node resource group {node_rg}")
                if not ok:
                    problems.append(f"the AKS-managed VNet (node resource group {node_rg}) was not read: {value}")
                elif not value:
                    problems.append(f"no virtual network in the node resource group {node_rg}, where AKS keeps its "
                                    "managed VNet")
                for v in value if ok else []:
                    rid = parse_resource_id(getattr(v, "id", None))
                    if rid is not None and rid.text.lower() not in wanted:
                        reads.append(self.complete(_VNetRead(rid, v)))
        for key, rid in wanted.items():
            net = self.network(rid.subscription)
            ok, value = self.call(lambda: net.virtual_networks.get(rid.resource_group, rid.name), action=READ_VNET,
                                  scope=rid.text, what=f"virtual network {rid.name} in resource group "
                                                       f"{rid.resource_group} (subscription {rid.subscription})")
            read = _VNetRead(rid, value if ok else None)
            if ok:
                self.complete(read)
            else:
                read.problems.append(value)
            reads.append(read)

        stems = vnet_stems(r.rid.text for r in reads)
        for r in reads:
            stem = stems[r.rid.text.lower()]
            if r.vnet is not None:
                self.raw.vnets[stem] = serialise_vnet(r.vnet, r.subnets, r.peerings)
                self.raw.origin[f"vnets/{stem}"] = (f"Azure Resource Manager (virtualNetworks "
                                                    f"{r.rid.resource_group}/{r.rid.name})")
            if r.problems:
                self.raw.missing[f"{MissingKey.AZURE_VNETS}/{stem}"] = "; ".join(r.problems)
        if problems:
            self.raw.missing[MissingKey.AZURE_VNETS] = "; ".join(problems)
        elif not self.raw.vnets:
            self.raw.missing[MissingKey.AZURE_VNETS] = ("none of the cluster's virtual networks could be read (see "
                                                        "azure.vnets/<name>)")

    def complete(self, read: _VNetRead) -> _VNetRead:
        """Subnets and peerings: embedded in the VNet, else listed."""
        vnet, rid = read.vnet, read.rid
        net = self.network(rid.subscription)
        read.subnets = getattr(vnet, "subnets", None)
        if read.subnets is None:
            ok, value = self.call(lambda: list(net.subnets.list(rid.resource_group, rid.name)), action=READ_SUBNETS,
                                  scope=rid.text, what=f"the subnets of {rid.name}")
            if ok:
                read.subnets = value
            else:
                read.problems.append(f"subnets not read: {value}")
        peerings = getattr(vnet, "virtual_network_peerings", None)
        if peerings is None or any(peering_lacks_details(p) for p in peerings):
            ok, value = self.call(lambda: list(net.virtual_network_peerings.list(rid.resource_group, rid.name)),
                                  action=READ_PEERINGS, scope=rid.text, what=f"the peerings of {rid.name}")
            if ok:
                peerings = value
            else:
                read.problems.append(f"peerings not read: {value}")
        read.peerings = peerings
        return read


def _plain(text: str, name: str = "", limit: int = 160) -> str:
    """A credential message without its links and boilerplate: the sentences that say what is wrong."""
    kept = []
    for sentence in re.split(r"(?<=[.!?])\s+", " ".join(text.split())):
        low = sentence.lower()
        if "http" in low or low.startswith(("visit ", "to mitigate", "see the troubleshooting", "for more")):
            break
        kept.append(sentence)
    out = " ".join(kept) or " ".join(text.split())
    if name:
        out = re.sub(rf"^{re.escape(name)}:?\s*(authentication\s+)?unavailable\.?\s*", "", out, flags=re.I)
        out = out or "unavailable"
    return _one_line(out, limit)


def _credential_failure(message: str) -> tuple[bool, str]:
    """A credential chain's error → (an identity was refused, a one-line summary).

    ``DefaultAzureCredential`` raises the same error type whether no credential was available or
    one was tried and refused; its message lists each attempt (``\tName: message``). A refusal
    carries the identity provider's code (``AADSTS…``) or says ``Authentication failed``.
    """
    attempts = []
    for line in message.splitlines():
        if line.startswith("\t") and ": " in line:
            name, _, text = line.strip().partition(": ")
            attempts.append((name, _plain(text, name)))
    refused = "AADSTS" in message or "Authentication failed" in message
    if not attempts:
        return refused, _plain(message, limit=300)
    if refused:
        attempts = [a for a in attempts if "AADSTS" in a[1] or "Authentication failed" in a[1]] or attempts
    return refused, "; ".join(f"{name}: {text}" for name, text in attempts)


def _arm_error(e: Any) -> tuple[str, str]:
    """ARM's ``error.code`` and ``error.message`` (one line) from an ``HttpResponseError``."""
    err = getattr(e, "error", None)
    code = getattr(err, "code", None)
    msg = getattr(err, "message", None)
    if not code or not msg:
        try:
            body = e.response.json()
            inner = body.get("error", body) if isinstance(body, dict) else {}
            code = code or inner.get("code")
            msg = msg or inner.get("message")
        except Exception:  # noqa: BLE001 - a non-JSON error body
            pass
    return str(code or getattr(e, "reason", None) or "error"), _one_line(msg or e.message or "", 300)


def _az_default_subscription() -> tuple[str | None, str]:
    """The Azure CLI's default subscription (``az account show``): ``(id, "")`` or ``(None, why)``."""
    az = shutil.which("az")
    if az is None:
        return None, "the Azure CLI (`az`) is not on PATH"
    try:
        proc = subprocess.run([az, "account", "show", "--output", "json"], capture_output=True, text=True,
                              timeout=AZ_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, f"`az account show` did not answer within {AZ_TIMEOUT:.0f} s"
    except OSError as e:
        return None, f"`az account show` could not run: {e.strerror or e}"
    if proc.returncode != 0:
        err = proc.stderr or ""
        if "az login" in err and "AADSTS" not in err:
            return None, "not logged in"
        return None, f"`az account show` failed: {_one_line(err, 200) or f'exit status {proc.returncode}'}"
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None, "`az account show` printed no JSON"
    sub = data.get("id") if isinstance(data, dict) else None
    if not isinstance(sub, str) or not sub:
        return None, "`az account show` named no subscription"
    return sub, ""
