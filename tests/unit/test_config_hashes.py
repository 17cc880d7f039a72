"""Config hashes are public (status, pod annotations, revision ids), so a Secret's must not
let anyone test guesses of its value offline; an unchanged Secret keeps the hash an older
operator recorded, so an upgrade releases nothing."""

from __future__ import annotations

import base64
import hashlib
import json

from harness_operator.render.configs import content_hash

UID = "5b7c1f3e-8d2a-4a51-9c0e-2f6d8b1a7e44"


def secret(pin: str, uid: str = UID) -> dict[str, object]:
    return {
        "kind": "Secret",
        "metadata": {"name": "pin", "uid": uid},
        "data": {"pin": base64.b64encode(pin.encode()).decode()},
    }


def plain(obj: dict[str, object]) -> str:
    """The unkeyed scheme of operator 0.1, as an attacker would recompute it."""
    content = {key: obj.get(key) or {} for key in ("data", "binaryData", "stringData")}
    return hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:16]


def test_a_pin_cannot_be_found_from_its_hash_by_trying_every_value() -> None:
    published = content_hash("Secret", secret("4821"))
    guesses = {plain(secret(f"{n:04d}")): f"{n:04d}" for n in range(10_000)}
    assert published not in guesses
    # The same search finds it at once under the unkeyed scheme: the test can fail.
    assert guesses[plain(secret("4821"))] == "4821"


def test_the_key_is_the_secrets_uid() -> None:
    assert content_hash("Secret", secret("4821")) == content_hash("Secret", secret("4821"))
    assert content_hash("Secret", secret("4821")) != content_hash("Secret", secret("4822"))
    assert content_hash("Secret", secret("4821", uid="another")) != content_hash(
        "Secret", secret("4821")
    )


def test_configmaps_keep_the_plain_content_hash() -> None:
    config = {"kind": "ConfigMap", "metadata": {"uid": UID}, "data": {"prompt": "be brief"}}
    assert content_hash("ConfigMap", config) == plain(config)


def test_an_unchanged_secret_keeps_the_hash_an_older_operator_recorded() -> None:
    old = plain(secret("4821"))
    assert content_hash("Secret", secret("4821"), recorded=old) == old
    # Changed content: the new value is keyed.
    changed = content_hash("Secret", secret("9999"), recorded=old)
    assert changed == content_hash("Secret", secret("9999"))
    assert changed != plain(secret("9999"))
    # A keyed value recorded by this operator is simply recomputed.
    keyed = content_hash("Secret", secret("4821"))
    assert content_hash("Secret", secret("4821"), recorded=keyed) == keyed
