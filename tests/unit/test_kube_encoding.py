"""The body of a server-side apply reads back, through a YAML 1.1 parser as the apiserver's,
as exactly the object we sent, whatever the strings in it contain.

The apiserver decodes `application/apply-patch+yaml` with go-yaml v2; PyYAML implements the
same YAML 1.1 rules for escapes, line breaks and printable characters, so it stands in for it
here. tests/integration/test_hostile_values.py checks the same table on the real apiserver.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from harness_operator.kube import Kube
from harness_operator.kube.client import APPLY_CONTENT_TYPE, apply_body

HOSTILE: dict[str, str] = {
    "emoji": "launch \U0001f680 done \u2705 family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "rtl": "\u202eevil.exe \u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u200f\u200e",
    "zero-width": "a\u200bb\u200cc\u200dd\u2060e\ufeff",
    "line-separators": "x\u0085y\u2028z\u2029",
    "controls": "tab\there\nnl\r\x01\x1b\x7f\x80\x9f\x00",
    "noncharacters": "x\ufffe\uffffy",
    "private-and-last": "\ue000\U000f0000\U0010ffff",
    "json-and-yaml-syntax": "\"'\\: #{}[],&*!|>%@` --- ? - ~ null yes 0x1F",
    "escapes-as-text": "\\ud83d\\ude00 \\U0001F600 \\u0000",
}


def manifest(value: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "agent",
            "namespace": "agents",
            "annotations": {"harness.dev/note": value},
        },
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "harness",
                            "image": f"ghcr.io/acme/agent:{value}",
                            "command": [value],
                            "args": ["--greeting", value],
                            "env": [{"name": "GREETING", "value": value}],
                            "resources": {"requests": {"cpu": 1, "memory": "1.5Gi"}},
                        }
                    ]
                }
            },
            "replicas": 2,
            "paused": False,
            "minReadySeconds": None,
        },
    }


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
def test_the_body_reads_back_as_the_object(value: str) -> None:
    obj = manifest(value)
    body = apply_body(obj)
    assert yaml.safe_load(body) == obj


@pytest.mark.parametrize("value", HOSTILE.values(), ids=list(HOSTILE))
def test_the_body_is_printable_ascii(value: str) -> None:
    # Nothing a YAML reader could refuse ("control characters are not allowed") or take
    # for a line break (a raw U+0085, U+2028 or U+2029).
    body = apply_body(manifest(value))
    assert all(0x20 <= byte <= 0x7E for byte in body), body


def test_without_non_bmp_characters_the_body_is_plain_json() -> None:
    obj = manifest(HOSTILE["rtl"] + HOSTILE["zero-width"] + HOSTILE["controls"])
    assert json.loads(apply_body(obj)) == obj


def test_characters_beyond_the_bmp_are_yaml_32_bit_escapes() -> None:
    body = apply_body({"v": "\U0001f680"})
    assert body == b'{"v": "\\U0001F680"}'
    # What json.dumps sends instead, a UTF-16 surrogate pair, is no character in YAML: the
    # apiserver answers "invalid Unicode character escape code"; PyYAML keeps two halves.
    assert yaml.safe_load(json.dumps({"v": "\U0001f680"})) != {"v": "\U0001f680"}


def test_a_lone_surrogate_becomes_the_replacement_character() -> None:
    assert yaml.safe_load(apply_body({"v": "a\ud800b"})) == {"v": "a\ufffdb"}


def test_apply_sends_that_body_as_an_apply_patch() -> None:
    sent: list[tuple[str, str, Any, str]] = []

    class Recorder(Kube):
        def _request(
            self,
            method: str,
            path: str,
            *,
            query: list[tuple[str, str]] | None = None,
            body: Any = None,
            content_type: str = "application/json",
        ) -> dict[str, Any]:
            sent.append((method, path, body, content_type))
            return {}

    obj = manifest(HOSTILE["emoji"])
    Recorder(api=object()).apply(obj)  # type: ignore[arg-type]
    [(method, path, body, content_type)] = sent
    assert (method, path) == ("PATCH", "/apis/apps/v1/namespaces/agents/deployments/agent")
    assert content_type == APPLY_CONTENT_TYPE == "application/apply-patch+yaml"
    assert body == apply_body(obj)
    assert yaml.safe_load(body) == obj
