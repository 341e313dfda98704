"""A small Azure Resource Manager (and token issuer) over HTTPS, for the real Azure SDK clients.

It runs in a thread on 127.0.0.1 with a certificate from a throwaway CA (``azurearm.pki``) and
serves, with ARM's own JSON shapes (resources with ``properties``, lists as
``{"value": [...], "nextLink": ...}``, errors as ``{"error": {"code", "message"}}``):

* ``GET /subscriptions`` (Microsoft.Resources);
* Microsoft.ContainerService ``managedClusters``: list in a subscription, list in a resource
  group, get;
* Microsoft.Network ``virtualNetworks`` (list in a resource group, get), and their ``subnets`` and
  ``virtualNetworkPeerings`` (list, get);
* token issuing for ``azure-identity``: the OpenID configuration and a token endpoint for tenant
  ``adfs`` (``/adfs/.well-known/openid-configuration``, ``/adfs/oauth2/token``; client-credentials
  grant with a registered client secret) and for an Entra-style tenant
  (``/{tenant}/v2.0/.well-known/openid-configuration``, ``/{tenant}/oauth2/v2.0/token``).

Every ARM request needs ``api-version`` (400 ``MissingApiVersionParameter`` otherwise) and a
bearer token this server issued or registered (401 ``AuthenticationFailed`` /
``InvalidAuthenticationToken`` otherwise, with ARM's ``WWW-Authenticate`` header). ARM paths are
matched case-insensitively, as ARM does. Lists are paged (``page_size``) with absolute
``nextLink`` URLs.

Knobs: ``deny(action, scope)`` answers 403 ``AuthorizationFailed`` with ARM's message for that
action on requests at or under ``scope``; ``fault(pattern, status, code, message)`` answers any
status on matching paths; ``embed=False`` on ``arm_vnet`` serves a VNet whose GET omits its
embedded ``subnets`` and ``virtualNetworkPeerings`` (they stay readable through their own
endpoints); ``log`` records every request.
"""

from __future__ import annotations

import copy
import http.server
import json
import re
import secrets
import socketserver
import ssl
import threading
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from azurearm.pki import TestPKI

CS = "Microsoft.ContainerService"
NET = "Microsoft.Network"


# --------------------------------------------------------------------------- resource builders (ARM JSON)


def cluster_id(sub: str, rg: str, name: str) -> str:
    # ARM returns AKS ids with a lower-case "resourcegroups" segment.
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/{CS}/managedClusters/{name}"


def vnet_id(sub: str, rg: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{NET}/virtualNetworks/{name}"


def subnet_id(sub: str, rg: str, vnet: str, subnet: str) -> str:
    return f"{vnet_id(sub, rg, vnet)}/subnets/{subnet}"


def arm_pool(name: str, *, os_type: str = "Linux", mode: str = "User", count: int = 3,
             vnet_subnet_id: str | None = None, pod_subnet_id: str | None = None,
             pod_ip_allocation_mode: str | None = None) -> dict:
    pool: dict[str, Any] = {"name": name, "count": count, "vmSize": "Standard_D4s_v5", "osType": os_type,
                            "osSKU": "Windows2022" if os_type == "Windows" else "Ubuntu", "mode": mode,
                            "type": "VirtualMachineScaleSets", "provisioningState": "Succeeded",
                            "orchestratorVersion": "1.31.2", "maxPods": 30}
    if vnet_subnet_id:
        pool["vnetSubnetID"] = vnet_subnet_id
    if pod_subnet_id:
        pool["podSubnetID"] = pod_subnet_id
    if pod_ip_allocation_mode:
        pool["podIPAllocationMode"] = pod_ip_allocation_mode
    return pool


def arm_cluster(sub: str, rg: str, name: str, *, location: str = "swedencentral",
                node_resource_group: str | None = None, network_profile: dict | None = None,
                pools: list[dict] | None = None, fqdn: str | None = None,
                private_fqdn: str | None = None) -> dict:
    """A ``Microsoft.ContainerService/managedClusters`` resource as ARM returns it."""
    props: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "kubernetesVersion": "1.31",
        "currentKubernetesVersion": "1.31.2",
        "dnsPrefix": f"{name}-dns",
        "fqdn": fqdn or f"{name}-dns-{abs(hash(name)) % 10**8:08x}.hcp.{location}.azmk8s.io",
        "azurePortalFQDN": f"{name}-dns-portal.hcp.{location}.azmk8s.io",
        "agentPoolProfiles": pools if pools is not None else [arm_pool("nodepool1", mode="System")],
        "nodeResourceGroup": node_resource_group or f"MC_{rg}_{name}_{location}",
        "enableRBAC": True,
        "networkProfile": network_profile if network_profile is not None else {
            "networkPlugin": "azure", "networkPolicy": "none", "serviceCidr": "10.0.0.0/16",
            "dnsServiceIP": "10.0.0.10", "outboundType": "loadBalancer", "serviceCidrs": ["10.0.0.0/16"],
            "ipFamilies": ["IPv4"], "loadBalancerSku": "standard"},
    }
    if private_fqdn:
        props["privateFQDN"] = private_fqdn
    return {"id": cluster_id(sub, rg, name), "location": location, "name": name,
            "type": f"{CS}/ManagedClusters", "sku": {"name": "Base", "tier": "Free"},
            "identity": {"type": "SystemAssigned"}, "properties": props}


def arm_subnet(name: str, prefix: str | None = None, *, prefixes: list[str] | None = None,
               delegations: list[str] = ()) -> dict:
    props: dict[str, Any] = {"provisioningState": "Succeeded", "privateEndpointNetworkPolicies": "Disabled",
                             "privateLinkServiceNetworkPolicies": "Enabled"}
    if prefix is not None:
        props["addressPrefix"] = prefix
    if prefixes is not None:
        props["addressPrefixes"] = prefixes
    props["delegations"] = [{"name": f"delegation{i}", "properties": {
        "serviceName": svc, "actions": ["Microsoft.Network/virtualNetworks/subnets/join/action"],
        "provisioningState": "Succeeded"}, "type": f"{NET}/virtualNetworks/subnets/delegations"}
        for i, svc in enumerate(delegations)]
    return {"name": name, "type": f"{NET}/virtualNetworks/subnets", "properties": props}


def arm_peering(name: str, remote_vnet_id: str, *, state: str = "Connected", sync: str = "FullyInSync",
                remote_prefixes: list[str] = (), remote_vnet_prefixes: list[str] | None = None,
                allow_forwarded_traffic: bool = False, allow_gateway_transit: bool = False,
                use_remote_gateways: bool = False, peer_complete_vnets: bool | None = None,
                local_subnet_names: list[str] | None = None, remote_subnet_names: list[str] | None = None) -> dict:
    props: dict[str, Any] = {
        "provisioningState": "Succeeded", "peeringState": state, "peeringSyncLevel": sync,
        "remoteVirtualNetwork": {"id": remote_vnet_id},
        "allowVirtualNetworkAccess": True, "allowForwardedTraffic": allow_forwarded_traffic,
        "allowGatewayTransit": allow_gateway_transit, "useRemoteGateways": use_remote_gateways,
        "doNotVerifyRemoteGateways": False,
        "remoteAddressSpace": {"addressPrefixes": list(remote_prefixes)},
        "remoteVirtualNetworkAddressSpace": {"addressPrefixes": list(
            remote_prefixes if remote_vnet_prefixes is None else remote_vnet_prefixes)},
        "routeServiceVips": {},
    }
    if peer_complete_vnets is not None:
        props["peerCompleteVnets"] = peer_complete_vnets
    if local_subnet_names is not None:
        props["localSubnetNames"] = local_subnet_names
    if remote_subnet_names is not None:
        props["remoteSubnetNames"] = remote_subnet_names
    return {"name": name, "type": f"{NET}/virtualNetworks/virtualNetworkPeerings", "properties": props}


def arm_vnet(sub: str, rg: str, name: str, prefixes: list[str], *, subnets: list[dict] = (),
             peerings: list[dict] = (), location: str = "swedencentral", embed: bool = True) -> dict:
    """A ``Microsoft.Network/virtualNetworks`` resource; subnet and peering ids are filled in.

    ``embed=False``: the VNet's own GET leaves out ``subnets`` and ``virtualNetworkPeerings``.
    """
    vid = vnet_id(sub, rg, name)
    subs = []
    for s in subnets:
        s = copy.deepcopy(s)
        s["id"] = f"{vid}/subnets/{s['name']}"
        for d in s["properties"].get("delegations", []):
            d["id"] = f"{s['id']}/delegations/{d['name']}"
        subs.append(s)
    peers = []
    for p in peerings:
        p = copy.deepcopy(p)
        p["id"] = f"{vid}/virtualNetworkPeerings/{p['name']}"
        peers.append(p)
    return {"id": vid, "name": name, "type": f"{NET}/virtualNetworks", "location": location,
            "etag": f'W/"{secrets.token_hex(8)}"',
            "properties": {"provisioningState": "Succeeded", "resourceGuid": secrets.token_hex(16),
                           "addressSpace": {"addressPrefixes": list(prefixes)},
                           "subnets": subs, "virtualNetworkPeerings": peers,
                           "enableDdosProtection": False},
            "_embed": embed}


# --------------------------------------------------------------------------- the server


@dataclass
class Deny:
    action: str
    scope: str


@dataclass
class Fault:
    pattern: re.Pattern
    status: int
    code: str
    message: str


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    token: str | None
    body: str = ""


@dataclass
class Client:
    """A service principal the token endpoint accepts."""

    client_id: str
    secret: str
    object_id: str = field(default_factory=lambda: secrets.token_hex(16))


_ARM_ROUTES: list[tuple[re.Pattern, str, str]] = [
    # (path regex, handler, RBAC action)
    (re.compile(r"^/subscriptions$", re.I), "subscriptions", "Microsoft.Resources/subscriptions/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/providers/{CS}/managedClusters$", re.I), "list_clusters",
     f"{CS}/managedClusters/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{CS}/managedClusters$",
                re.I), "list_clusters", f"{CS}/managedClusters/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{CS}/managedClusters/"
                r"(?P<name>[^/]+)$", re.I), "get_cluster", f"{CS}/managedClusters/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{NET}/virtualNetworks$",
                re.I), "list_vnets", f"{NET}/virtualNetworks/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{NET}/virtualNetworks/"
                r"(?P<vnet>[^/]+)$", re.I), "get_vnet", f"{NET}/virtualNetworks/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{NET}/virtualNetworks/"
                r"(?P<vnet>[^/]+)/subnets(?:/(?P<child>[^/]+))?$", re.I), "subnets",
     f"{NET}/virtualNetworks/subnets/read"),
    (re.compile(rf"^/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/{NET}/virtualNetworks/"
                r"(?P<vnet>[^/]+)/virtualNetworkPeerings(?:/(?P<child>[^/]+))?$", re.I), "peerings",
     f"{NET}/virtualNetworks/virtualNetworkPeerings/read"),
]


class ARM:
    """The local ARM. Use as a context manager; ``url`` is its base (``options.arm_endpoint``)."""

    def __init__(self, pki: TestPKI, *, tenant: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
                 page_size: int = 2):
        self.pki = pki
        self.tenant = tenant
        self.page_size = page_size
        self.subscriptions: dict[str, str] = {}        # id → display name
        self.resource_groups: set[tuple[str, str]] = set()   # (sub, rg) lower-case
        self.resources: dict[str, dict] = {}           # lower-case id → ARM JSON
        self.clients: dict[str, Client] = {}
        self.tokens: dict[str, str] = {}               # access token → principal (client id or "cli-user")
        self.denies: list[Deny] = []
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self._lock = threading.Lock()
        self._server: socketserver.ThreadingMixIn | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # ------------------------------------------------------------------ content

    def add_subscription(self, sub: str, name: str | None = None) -> None:
        self.subscriptions[sub] = name or f"Subscription {sub[:8]}"

    def add(self, resource: dict) -> dict:
        rid = resource["id"]
        m = re.match(r"^/subscriptions/([^/]+)/resourceGroups/([^/]+)/", rid, re.I)
        assert m, rid
        self.subscriptions.setdefault(m.group(1), f"Subscription {m.group(1)[:8]}")
        self.resource_groups.add((m.group(1).lower(), m.group(2).lower()))
        self.resources[rid.lower()] = resource
        return resource

    def add_resource_group(self, sub: str, rg: str) -> None:
        self.subscriptions.setdefault(sub, f"Subscription {sub[:8]}")
        self.resource_groups.add((sub.lower(), rg.lower()))

    def register_client(self, client_id: str, secret: str) -> Client:
        c = Client(client_id, secret)
        self.clients[client_id] = c
        return c

    def register_token(self, principal: str = "cli-user") -> str:
        token = "cli." + secrets.token_urlsafe(24)
        self.tokens[token] = principal
        return token

    def deny(self, action: str, scope: str) -> None:
        self.denies.append(Deny(action, scope))

    def fault(self, pattern: str, status: int, code: str = "InternalServerError", message: str = "fault") -> None:
        self.faults.append(Fault(re.compile(pattern, re.I), status, code, message))

    def requests(self, pattern: str = "", method: str = "GET") -> list[Request]:
        rx = re.compile(pattern, re.I)
        with self._lock:
            return [r for r in self.log if r.method == method and rx.search(r.path)]

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> "ARM":
        arm = self

        class Handler(_Handler):
            server_arm = arm

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        srv = Server(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(str(self.pki.cert_pem), str(self.pki.key_pem))
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        self._server = srv
        self.url = f"https://127.0.0.1:{srv.server_address[1]}"
        self._thread = threading.Thread(target=srv.serve_forever, name="azurearm", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ------------------------------------------------------------------ helpers for handlers

    def _denied(self, action: str, path: str) -> Deny | None:
        low = path.lower().rstrip("/")
        for d in self.denies:
            scope = d.scope.lower().rstrip("/")
            if d.action.lower() == action.lower() and (low == scope or low.startswith(scope + "/")):
                return d
        return None

    def _has_rg(self, sub: str, rg: str) -> bool:
        return (sub.lower(), rg.lower()) in self.resource_groups

    def _of_type(self, prefix: str, rtype: str) -> list[dict]:
        out = []
        for rid, res in self.resources.items():
            if rid.startswith(prefix.lower() + "/") and res["type"].lower() == rtype.lower():
                out.append(res)
        return sorted(out, key=lambda r: r["id"].lower())


def _public(resource: dict) -> dict:
    """The resource as served (private knobs removed)."""
    out = copy.deepcopy(resource)
    embed = out.pop("_embed", True)
    if not embed:
        out["properties"].pop("subnets", None)
        out["properties"].pop("virtualNetworkPeerings", None)
    return out


class _ARMError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_arm: ARM

    def log_message(self, fmt: str, *args: Any) -> None:   # quiet
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: Any, headers: dict[str, str] | None = None,
              content_type: str = "application/json; charset=utf-8") -> None:
        data = json.dumps(body).encode() if not isinstance(body, (bytes, str)) else (
            body.encode() if isinstance(body, str) else body)
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-ms-request-id", secrets.token_hex(8))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> str:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n).decode() if n else ""

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_PUT(self) -> None:
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        arm = self.server_arm
        parsed = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(parsed.path)
        query = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        body = self._body()
        auth = self.headers.get("Authorization") or ""
        token = auth[7:] if auth.lower().startswith("bearer ") else None
        with arm._lock:
            arm.log.append(Request(method, path, query, token, body))
        try:
            for f in arm.faults:
                if f.pattern.search(path):
                    raise _ARMError(f.status, f.code, f.message)
            if re.search(r"/\.well-known/openid-configuration$", path):
                return self._openid(path)
            if re.search(r"/oauth2/(v2\.0/)?token$", path) and method == "POST":
                return self._token(path, body)
            if method != "GET":
                raise _ARMError(405, "MethodNotAllowed", f"this test ARM is read-only ({method} {path})")
            self._arm_get(path, query, token)
        except _ARMError as e:
            self._send(e.status, {"error": {"code": e.code, "message": e.message}}, e.headers)

    # ------------------------------------------------------------------ identity

    def _base(self) -> str:
        return self.server_arm.url

    def _openid(self, path: str) -> None:
        parts = path.strip("/").split("/")
        tenant = parts[0]
        if tenant.lower() == "adfs":
            token_ep = f"{self._base()}/adfs/oauth2/token"
            issuer = f"{self._base()}/adfs"
            auth_ep = f"{self._base()}/adfs/oauth2/authorize"
        else:
            token_ep = f"{self._base()}/{tenant}/oauth2/v2.0/token"
            issuer = f"{self._base()}/{tenant}/v2.0"
            auth_ep = f"{self._base()}/{tenant}/oauth2/v2.0/authorize"
        self._send(200, {"token_endpoint": token_ep, "authorization_endpoint": auth_ep, "issuer": issuer,
                         "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                         "response_types_supported": ["code", "id_token", "token"],
                         "subject_types_supported": ["pairwise"],
                         "id_token_signing_alg_values_supported": ["RS256"]})

    def _token(self, path: str, body: str) -> None:
        arm = self.server_arm
        form = dict(urllib.parse.parse_qsl(body))
        client = arm.clients.get(form.get("client_id", ""))
        if form.get("grant_type") != "client_credentials":
            return self._send(400, {"error": "unsupported_grant_type",
                                    "error_description": f"AADSTS70003: grant {form.get('grant_type')!r}"})
        if client is None:
            return self._send(400, {"error": "unauthorized_client", "error_description":
                                    f"AADSTS700016: Application with identifier '{form.get('client_id')}' "
                                    "was not found in the directory."})
        if form.get("client_secret") != client.secret:
            return self._send(401, {"error": "invalid_client", "error_description":
                                    "AADSTS7000215: Invalid client secret provided."})
        token = "sp." + secrets.token_urlsafe(24)
        with arm._lock:
            arm.tokens[token] = client.client_id
        self._send(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                         "access_token": token, "resource": form.get("resource", form.get("scope", ""))})

    # ------------------------------------------------------------------ ARM

    def _arm_get(self, path: str, query: dict[str, str], token: str | None) -> None:
        arm = self.server_arm
        path = path.rstrip("/") or "/"
        for rx, handler, action in _ARM_ROUTES:
            m = rx.match(path)
            if m:
                break
        else:
            raise _ARMError(404, "InvalidResourceType", f"The resource type could not be found for {path}.")
        challenge = {"WWW-Authenticate": f'Bearer authorization_uri="{arm.url}/{arm.tenant}", '
                                         'error="invalid_token", error_description="The authentication failed"'}
        if token is None:
            raise _ARMError(401, "AuthenticationFailed",
                            "Authentication failed. The 'Authorization' header is missing.", challenge)
        principal = arm.tokens.get(token)
        if principal is None:
            raise _ARMError(401, "InvalidAuthenticationToken",
                            "The access token is invalid.", challenge)
        if "api-version" not in query:
            raise _ARMError(400, "MissingApiVersionParameter",
                            "The api-version query parameter (?api-version=) is required for all requests.")
        g = m.groupdict()
        sub = g.get("sub")
        if sub is not None and sub.lower() not in {s.lower() for s in arm.subscriptions}:
            raise _ARMError(404, "SubscriptionNotFound", f"The subscription '{sub}' could not be found.")
        denied = arm._denied(action, path)
        if denied is not None:
            oid = arm.clients[principal].object_id if principal in arm.clients else "00000000-aaaa-bbbb-cccc-0123456789ab"
            raise _ARMError(403, "AuthorizationFailed",
                            f"The client '{principal}' with object id '{oid}' does not have authorization to "
                            f"perform action '{action}' over scope '{path}' or the scope is invalid. If access "
                            "was recently granted, please refresh your credentials.")
        rg = g.get("rg")
        if rg is not None and not arm._has_rg(sub, rg):
            raise _ARMError(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        getattr(self, "_h_" + handler)(path, query, g)

    def _page(self, path: str, query: dict[str, str], items: list[dict]) -> None:
        arm = self.server_arm
        start = int(query.get("$skiptoken", "0") or 0)
        chunk = items[start:start + arm.page_size]
        body: dict[str, Any] = {"value": [_public(i) for i in chunk]}
        if start + arm.page_size < len(items):
            q = urllib.parse.urlencode({"api-version": query["api-version"], "$skiptoken": start + arm.page_size})
            body["nextLink"] = f"{arm.url}{urllib.parse.quote(path)}?{q}"
        self._send(200, body)

    def _not_found(self, rtype: str, name: str, rg: str) -> _ARMError:
        return _ARMError(404, "ResourceNotFound",
                         f"The Resource '{rtype}/{name}' under resource group '{rg}' was not found. For more "
                         "details please go to https://aka.ms/ARMResourceNotFoundFix")

    def _h_subscriptions(self, path: str, query: dict[str, str], g: dict) -> None:
        arm = self.server_arm
        items = [{"id": f"/subscriptions/{s}", "subscriptionId": s, "displayName": n, "state": "Enabled",
                  "tenantId": arm.tenant, "authorizationSource": "RoleBased"}
                 for s, n in sorted(arm.subscriptions.items())]
        self._send(200, {"count": {"type": "Total", "value": len(items)}, "value": items})

    def _h_list_clusters(self, path: str, query: dict[str, str], g: dict) -> None:
        prefix = f"/subscriptions/{g['sub']}" + (f"/resourcegroups/{g['rg']}" if g.get("rg") else "")
        self._page(path, query, self.server_arm._of_type(prefix, f"{CS}/ManagedClusters"))

    def _h_get_cluster(self, path: str, query: dict[str, str], g: dict) -> None:
        res = self.server_arm.resources.get(path.lower())
        if res is None:
            raise self._not_found(f"{CS}/managedClusters", g["name"], g["rg"])
        self._send(200, _public(res))

    def _h_list_vnets(self, path: str, query: dict[str, str], g: dict) -> None:
        prefix = f"/subscriptions/{g['sub']}/resourcegroups/{g['rg']}"
        self._page(path, query, self.server_arm._of_type(prefix, f"{NET}/virtualNetworks"))

    def _vnet(self, g: dict) -> dict:
        vid = vnet_id(g["sub"], g["rg"], g["vnet"]).lower()
        res = self.server_arm.resources.get(vid)
        if res is None:
            raise self._not_found(f"{NET}/virtualNetworks", g["vnet"], g["rg"])
        return res

    def _h_get_vnet(self, path: str, query: dict[str, str], g: dict) -> None:
        self._send(200, _public(self._vnet(g)))

    def _children(self, path: str, query: dict[str, str], g: dict, key: str, rtype: str) -> None:
        items = self._vnet(g)["properties"].get(key, [])
        child = g.get("child")
        if child is None:
            return self._page(path, query, items)
        for it in items:
            if it["name"].lower() == child.lower():
                return self._send(200, copy.deepcopy(it))
        raise self._not_found(rtype, f"{g['vnet']}/{child}", g["rg"])

    def _h_subnets(self, path: str, query: dict[str, str], g: dict) -> None:
        self._children(path, query, g, "subnets", f"{NET}/virtualNetworks/subnets")

    def _h_peerings(self, path: str, query: dict[str, str], g: dict) -> None:
        self._children(path, query, g, "virtualNetworkPeerings", f"{NET}/virtualNetworks/virtualNetworkPeerings")
