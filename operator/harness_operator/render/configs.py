"""Which ConfigMaps and Secrets a spec references (env, envFrom, volumes, model), so that the
operator can hash their content into the revision and report the missing ones.

The hashes are public (`status.stableConfigHashes`, the pods' `harness.dev/config-hash`
annotation, and through it the revision ids), so a Secret's must not let anyone test
guesses of its value offline: a plain SHA-256 of a 4-digit PIN falls in a fraction of a
second. A Secret is hashed with HMAC-SHA256 keyed by the Secret's own `metadata.uid`, a
random UUID that only those who may read the Secret can learn (and they can read its
value anyway). It needs no key management and survives operator restarts and reinstalls;
a Secret deleted and created again with the same content is a new Secret (a release).

Operators before 0.2 stored plain hashes. While a Secret's content is unchanged, the value
recorded for it is kept (`recorded` in `content_hash`): an upgrade releases nothing and
restarts no pod, and the old value is replaced by a keyed one with the next change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from harness_operator.api import HarnessDeploymentSpec

HASH_LENGTH = 16

ConfigKind = Literal["ConfigMap", "Secret"]
_PROJECTED_KINDS: tuple[tuple[str, ConfigKind], ...] = (
    ("configMap", "ConfigMap"),
    ("secret", "Secret"),
)


@dataclass(frozen=True, order=True)
class ConfigRef:
    """One referenced ConfigMap or Secret. `optional` is true only when every reference to
    it is optional (then a missing object is not an error)."""

    kind: ConfigKind
    name: str
    optional: bool = False

    @property
    def key(self) -> str:
        """Key of this object in `ReleaseState.config_hashes`: `ConfigMap/<name>`."""
        return f"{self.kind}/{self.name}"


def content_hash(kind: ConfigKind, obj: dict[str, Any], recorded: str | None = None) -> str:
    """Hash of a ConfigMap's or Secret's content: a change makes a new revision. A Secret's
    is keyed (see the module doc); `recorded` is the value stored for it, kept while it is
    the unkeyed hash of the same content."""
    content = {key: obj.get(key) or {} for key in ("data", "binaryData", "stringData")}
    payload = json.dumps(content, sort_keys=True).encode()
    plain = hashlib.sha256(payload).hexdigest()[:HASH_LENGTH]
    if kind != "Secret":
        return plain
    if recorded is not None and hmac.compare_digest(recorded, plain):
        return recorded
    uid = str((obj.get("metadata") or {}).get("uid") or "")
    return hmac.new(uid.encode(), payload, hashlib.sha256).hexdigest()[:HASH_LENGTH]


def referenced_configs(spec: HarnessDeploymentSpec) -> list[ConfigRef]:
    """Every ConfigMap and Secret `spec` references, sorted by kind and name, each once."""
    optional: dict[tuple[ConfigKind, str], bool] = {}
    for kind, name, is_optional in _references(spec):
        optional[(kind, name)] = optional.get((kind, name), True) and is_optional
    return sorted(ConfigRef(kind, name, opt) for (kind, name), opt in optional.items())


def _references(spec: HarnessDeploymentSpec) -> Iterator[tuple[ConfigKind, str, bool]]:
    for env in spec.env or []:
        source = env.value_from
        if source is None:
            continue
        if source.config_map_key_ref is not None:
            ref = source.config_map_key_ref
            yield "ConfigMap", ref.name, bool(ref.optional)
        if source.secret_key_ref is not None:
            ref = source.secret_key_ref
            yield "Secret", ref.name, bool(ref.optional)
    for env_from in spec.env_from or []:
        if env_from.config_map_ref is not None:
            yield "ConfigMap", env_from.config_map_ref.name, bool(env_from.config_map_ref.optional)
        if env_from.secret_ref is not None:
            yield "Secret", env_from.secret_ref.name, bool(env_from.secret_ref.optional)
    for volume in spec.pod_template.volumes or []:
        yield from _volume_references(volume.model_extra or {})
    model = spec.model
    if model is not None and model.secret_ref is not None:
        yield "Secret", model.secret_ref.name, False
    if model is not None and model.system_prompt_ref is not None:
        yield "ConfigMap", model.system_prompt_ref.name, False


def _volume_references(source: dict[str, Any]) -> Iterator[tuple[ConfigKind, str, bool]]:
    """References in a (free-form) Kubernetes volume source: configMap, secret, and the
    configMap/secret entries of a projected volume."""
    config_map = _mapping(source.get("configMap"))
    if isinstance(config_map.get("name"), str):
        yield "ConfigMap", config_map["name"], bool(config_map.get("optional"))
    secret = _mapping(source.get("secret"))
    if isinstance(secret.get("secretName"), str):
        yield "Secret", secret["secretName"], bool(secret.get("optional"))
    projected = _mapping(source.get("projected"))
    sources = projected.get("sources")
    for item in sources if isinstance(sources, list) else []:
        for key, kind in _PROJECTED_KINDS:
            ref = _mapping(_mapping(item).get(key))
            if isinstance(ref.get("name"), str):
                yield kind, ref["name"], bool(ref.get("optional"))


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
