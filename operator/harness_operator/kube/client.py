"""The one place that talks to the Kubernetes API server.

Writes are server-side apply with a single field manager, so re-applying the same
desired object is a no-op on the server and ownership of every field we set is ours.
Every request is counted by verb in `harness_operator_kube_requests_total`; tests and
dashboards use it to prove that a converged reconcile sends no writes.

The official client is synchronous: async callers go through `asyncio.to_thread`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from prometheus_client import Counter

from harness_operator import __version__
from harness_operator.heartbeat import Heartbeat

FIELD_MANAGER = "harness-operator"
REPLICAS_MANAGER = "harness-operator-replicas"
"""Holds `spec.replicas` of a Deployment while its HPA takes over, so that dropping the field
from our applies never resets the count to 1 (see `hand_over_replicas`)."""
USER_AGENT = f"harness-operator/{__version__}"

REQUESTS = Counter(
    "harness_operator_kube_requests",
    "Requests the operator sent to the Kubernetes API server, by verb.",
    ["verb"],
)

Obj = dict[str, Any]


# When the API server last answered a request of ours (any HTTP status: it is up).
# Liveness reads it: a frozen or unreachable API server stops it.
LAST_ANSWER = Heartbeat()


@dataclass(frozen=True)
class Resource:
    """How to address one kind over REST (no discovery round-trips for our fixed set)."""

    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None, name: str | None = None) -> str:
        base = "/api/v1" if self.api_version == "v1" else f"/apis/{self.api_version}"
        ns = f"/namespaces/{namespace}" if self.namespaced and namespace else ""
        suffix = f"/{name}" if name else ""
        return f"{base}{ns}/{self.plural}{suffix}"


KNOWN: dict[tuple[str, str], Resource] = {
    (r.api_version, r.kind): r
    for r in (
        Resource("apps/v1", "Deployment", "deployments"),
        Resource("v1", "Service", "services"),
        Resource("v1", "ConfigMap", "configmaps"),
        Resource("v1", "Secret", "secrets"),
        Resource("v1", "Event", "events"),
        Resource("v1", "Namespace", "namespaces", namespaced=False),
        Resource("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers"),
        Resource("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets"),
        Resource("networking.istio.io/v1", "VirtualService", "virtualservices"),
        Resource("networking.istio.io/v1", "DestinationRule", "destinationrules"),
        Resource("harness.dev/v1alpha1", "HarnessDeployment", "harnessdeployments"),
        Resource("harness.dev/v1alpha1", "HarnessAnalysisTemplate", "harnessanalysistemplates"),
        Resource("keda.sh/v1alpha1", "ScaledObject", "scaledobjects"),
        Resource("batch/v1", "CronJob", "cronjobs"),
        Resource("batch/v1", "Job", "jobs"),
        Resource("v1", "Pod", "pods"),
        Resource("coordination.k8s.io/v1", "Lease", "leases"),
    )
}


APPLY_CONTENT_TYPE = "application/apply-patch+yaml"
"""The only apply patch type a 1.34 apiserver serves without feature gates: it answers 415 to
`application/apply-patch+json`, and `+cbor` needs the alpha CBORServingAndStorage gate."""
_NOT_PRINTABLE_ASCII = re.compile(r"[^\x20-\x7e]")


def apply_body(obj: Obj) -> bytes:
    """`obj` as the body of a server-side apply: JSON text, read by the apiserver as YAML.

    The apiserver decodes apply patches with a YAML 1.1 parser (go-yaml v2), which refuses
    or rewrites what plain JSON encoders produce for some characters, as a v1.34 apiserver
    shows (tests/integration/test_hostile_values.py applies each kind of character):

    - `json.dumps` writes a character beyond U+FFFF (an emoji) as a UTF-16 surrogate pair
      (`\\ud83d\\ude00`); YAML has no surrogates: `400 invalid Unicode character escape
      code`.
    - Raw UTF-8 (`ensure_ascii=False`) fixes that, but YAML refuses raw DEL, C1 controls and
      U+FFFE/U+FFFF (`control characters are not allowed`) and, worse, folds a raw U+0085
      (NEL), a YAML line break, into a space: the value would change without an error.

    So the body is pure ASCII: JSON with every other character written as a YAML escape, which
    JSON and YAML read alike for the BMP (`\\uXXXX`), and as YAML's 32-bit escape
    (`\\UXXXXXXXX`) beyond it. Non-ASCII characters only occur inside string literals, so the
    escapes never change the structure. A lone surrogate, which no apiserver ever sends us,
    becomes U+FFFD as Go would make it.
    """
    return _NOT_PRINTABLE_ASCII.sub(_yaml_escape, json.dumps(obj, ensure_ascii=False)).encode(
        "ascii"
    )


def _yaml_escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code > 0xFFFF:
        return f"\\U{code:08X}"
    if 0xD800 <= code <= 0xDFFF:
        return "\\uFFFD"
    return f"\\u{code:04X}"


REFUSALS = frozenset({400, 403, 404, 422})
"""Answers that say the object itself cannot be written as it is (invalid, refused by
admission, its namespace gone): retrying the same body cannot help, fixing the spec can."""


TYPED_PATCH_FAILURE = "failed to create typed patch object"
"""Server-side apply answers 500 with this when the body does not fit the kind's schema (an
unknown key in a free-form pod-template field): a refusal of the object, not server trouble."""


def refusal(err: ApiException) -> str | None:
    """The apiserver's reason for refusing a write, naming the field when it does; None when
    the failure is not about the object (conflict, throttling, server or network trouble)."""
    try:
        message = json.loads(err.body or b"{}").get("message")
    except (ValueError, AttributeError):
        message = None
    typed = err.status == 500 and TYPED_PATCH_FAILURE in str(message or "")
    if err.status not in REFUSALS and not typed:
        return None
    return str(message or err.reason or f"HTTP {err.status}")


def resource(api_version: str, kind: str) -> Resource:
    try:
        return KNOWN[(api_version, kind)]
    except KeyError:
        raise ValueError(f"harness-operator does not manage {kind} ({api_version})") from None


def load_api_client() -> client.ApiClient:
    """From $KUBECONFIG / ~/.kube/config, else the in-cluster ServiceAccount."""
    try:
        config.load_incluster_config()
        configuration = client.Configuration.get_default_copy()
    except config.ConfigException:
        configuration = client.Configuration()
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG"), client_configuration=configuration
        )
    api = client.ApiClient(configuration)
    api.user_agent = USER_AGENT
    return api


class Kube:
    """Typed-enough adapter over the official client: get, apply, delete, status."""

    def __init__(self, api: client.ApiClient | None = None) -> None:
        self.api = api or load_api_client()

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Obj:
        REQUESTS.labels(verb=method.lower()).inc()
        headers = {"Accept": "application/json", "Content-Type": content_type}
        request = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(*request, _request_timeout=30)
        response.read()
        LAST_ANSWER.beat()
        if not 200 <= response.status <= 299:
            raise ApiException(http_resp=response)
        data: Obj = json.loads(response.data or b"{}")
        return data

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        """The live object, or None when it does not exist."""
        try:
            return self._request("GET", resource(api_version, kind).path(namespace, name))
        except ApiException as err:
            if err.status == 404:
                return None
            raise

    def ours_if_any(
        self, api_version: str, kind: str, namespace: str | None, name: str
    ) -> Obj | None:
        """The object, when it may be one of ours (to delete it): a GET here; `CachedKube`
        answers from the watches, which see every object of ours."""
        return self.get(api_version, kind, namespace, name)

    def list(
        self, api_version: str, kind: str, namespace: str | None, label_selector: str = ""
    ) -> list[Obj]:
        """Items of a kind in a namespace (or cluster-wide with None)."""
        query = [("labelSelector", label_selector)] if label_selector else []
        items: list[Obj] = self._request(
            "GET", resource(api_version, kind).path(namespace), query=query
        ).get("items", [])
        return items

    def apply(self, obj: Obj, manager: str = FIELD_MANAGER, *, dry_run: bool = False) -> Obj:
        """Server-side apply `obj` as our field manager, taking over conflicting fields.
        `dry_run`: the apiserver validates, defaults and admits it, and stores nothing."""
        meta = obj["metadata"]
        res = resource(obj["apiVersion"], obj["kind"])
        query = [("fieldManager", manager), ("force", "true")]
        if dry_run:
            query.append(("dryRun", "All"))
        return self._request(
            "PATCH",
            res.path(meta.get("namespace"), meta["name"]),
            query=query,
            body=apply_body(obj),
            content_type=APPLY_CONTENT_TYPE,
        )

    def delete(self, api_version: str, kind: str, namespace: str | None, name: str) -> bool:
        """Delete in the background; False when it was already gone."""
        try:
            self._request(
                "DELETE",
                resource(api_version, kind).path(namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except ApiException as err:
            if err.status == 404:
                return False
            raise
        return True

    def create(self, obj: Obj) -> Obj:
        """Create `obj`; raises ApiException 409 when it exists."""
        meta = obj["metadata"]
        path = resource(obj["apiVersion"], obj["kind"]).path(meta.get("namespace"))
        return self._request("POST", path, body=obj)

    def replace(self, obj: Obj) -> Obj:
        """Replace `obj` as read (its `metadata.resourceVersion` makes this a compare-and-
        swap: ApiException 409 when someone wrote it since)."""
        meta = obj["metadata"]
        path = resource(obj["apiVersion"], obj["kind"]).path(meta.get("namespace"), meta["name"])
        return self._request("PUT", path, body=obj)

    def patch_status(
        self, api_version: str, kind: str, namespace: str, name: str, status: Obj
    ) -> Obj:
        """JSON-merge-patch the status subresource (fields set to None are removed)."""
        path = resource(api_version, kind).path(namespace, name) + "/status"
        return self._merge_patch(path, {"status": status})

    def patch_metadata(
        self, api_version: str, kind: str, namespace: str, name: str, metadata: Obj
    ) -> Obj:
        """JSON-merge-patch labels/annotations (e.g. to consume a control annotation)."""
        path = resource(api_version, kind).path(namespace, name)
        return self._merge_patch(path, {"metadata": metadata})

    def _merge_patch(self, path: str, body: Obj) -> Obj:
        return self._request("PATCH", path, body=body, content_type="application/merge-patch+json")
