"""Quantities compare as the apiserver stores them, so a converged spec sends no write.

The table is what a v1.34.4 kube-apiserver stored when each input was server-side applied
once as a container's `resources.requests.memory` (a ResourceList entry: Pod defaulting
rounds it up to milli units) and as a volume's `emptyDir.sizeLimit` (a plain Quantity), read
back and frozen here. Inputs prefixed `int:` were sent as JSON numbers.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from harness_operator.kube import drift
from harness_operator.kube.diff import parse_quantity, quantity_value, stored_quantity

# input -> (stored in a ResourceList, stored in a plain Quantity field)
APISERVER: dict[str, tuple[str, str]] = {
    "1234567890123456789012345678901234567890Ki": (
        "9223372036854775807",
        "9223372036854775807",
    ),
    "100000000000000000000000000000Ki": ("9223372036854775807", "9223372036854775807"),
    "123456789012345678901234567890": (
        "123456789012345678901234567890",
        "123456789012345678901234567890",
    ),
    "1000m": ("1", "1"),
    "1.5Gi": ("1536Mi", "1536Mi"),
    "0.5": ("500m", "500m"),
    ".5": ("500m", "500m"),
    "1e3": ("1e3", "1e3"),
    "1E3": ("1E3", "1E3"),
    "1e+3": ("1e+3", "1e+3"),
    "1.5e3": ("1500", "1500"),
    "12e-3": ("12e-3", "12e-3"),
    "1E-3": ("1E-3", "1E-3"),
    "10e-1": ("1", "1"),
    "1e0": ("1e0", "1e0"),
    "1e18": ("1e18", "1e18"),
    "1e19": ("10e18", "10e18"),
    "1e40": ("10e39", "10e39"),
    "2e9": ("2e9", "2e9"),
    "1.5e-9": ("1e-3", "2e-9"),
    "1e-10": ("1e-3", "1e-9"),
    "1E-12": ("1e-3", "1e-9"),
    "1.": ("1.", "1."),
    "+1": ("+1", "+1"),
    "01": ("01", "01"),
    "0": ("0", "0"),
    "0.0": ("0", "0"),
    "0Ki": ("0", "0"),
    "0.0000000001": ("1m", "1n"),
    "1.0000000001": ("1001m", "1000000001n"),
    "1.000001": ("1001m", "1.000001"),
    "100n": ("1m", "100n"),
    "0.001m": ("1m", "1u"),
    "0.1m": ("1m", "100u"),
    "1m": ("1m", "1m"),
    "1000000u": ("1", "1"),
    "1.5": ("1500m", "1500m"),
    "1.50": ("1500m", "1500m"),
    "2.000": ("2", "2"),
    "0.1": ("100m", "100m"),
    "1000E": ("1", "1"),
    "1000000000000000000000": ("1", "1"),
    "1E": ("1E", "1E"),
    "10E": ("10E", "10E"),
    "1G": ("1G", "1G"),
    "1000M": ("1G", "1G"),
    "1024": ("1024", "1024"),
    "9223372036854775807": ("9223372036854775807", "9223372036854775807"),
    "9223372036854775808": ("9223372036854775808", "9223372036854775808"),
    "9223372036854775807000m": ("9223372036854775807", "9223372036854775807"),
    "8Ki": ("8Ki", "8Ki"),
    "1023Ki": ("1023Ki", "1023Ki"),
    "1025Ki": ("1025Ki", "1025Ki"),
    "1536Ki": ("1536Ki", "1536Ki"),
    "2048Ki": ("2Mi", "2Mi"),
    "3072Ki": ("3Mi", "3Mi"),
    "1024Mi": ("1Gi", "1Gi"),
    "100Gi": ("100Gi", "100Gi"),
    "1.0Gi": ("1Gi", "1Gi"),
    "0.5Mi": ("512Ki", "512Ki"),
    "0.25Gi": ("256Mi", "256Mi"),
    "0.5Ki": ("512", "512"),
    "1.1Ki": ("1126400m", "1126400m"),
    "1.5Ki": ("1536", "1536"),
    "5.Ki": ("5.Ki", "5.Ki"),
    "7Ei": ("7Ei", "7Ei"),
    "8Ei": ("9223372036854775807", "9223372036854775807"),
    "999Ei": ("9223372036854775807", "9223372036854775807"),
    "int:0": ("0", "0"),
    "int:2": ("2", "2"),
    "int:9007199254740993": ("9007199254740993", "9007199254740993"),
    "int:9223372036854775807": ("9223372036854775807", "9223372036854775807"),
    "int:9223372036854775808": ("9223372036854776k", "9223372036854776k"),
    "int:18446744073709551615": ("18446744073709552k", "18446744073709552k"),
    "int:100000000000000000000": ("100E", "100E"),
    "int:123456789012345678901": ("123456789012345680k", "123456789012345680k"),
    "int:1000000000000000000000": ("1e+21", "1e+21"),
    "int:1234567890123456789012345": ("1234567890123456800e6", "1234567890123456800e6"),
    "int:999999999999999999999999999999999999999": ("1e+39", "1e+39"),
}

REFUSED = ["1e1.5", "", "1Ki5", "1e", "abc", "1.5.5", "1 Gi", "1e99999999999999999999"]
"""Inputs the apiserver refuses (e.g. `1e1.5`: `unable to convert unstructured object`)."""


def sent(text: str) -> str | int:
    return int(json.loads(text[4:])) if text.startswith("int:") else text


@pytest.mark.parametrize(("given", "stored"), APISERVER.items(), ids=list(APISERVER))
def test_stored_form_is_the_apiservers(given: str, stored: tuple[str, str]) -> None:
    in_resource_list, plain = stored
    assert stored_quantity(sent(given), resource_list=True) == in_resource_list
    assert stored_quantity(sent(given)) == plain


@pytest.mark.parametrize("stored", sorted({s for pair in APISERVER.values() for s in pair}))
def test_stored_forms_are_fixed_points(stored: str) -> None:
    # What the apiserver stored is what it stores again: live values compare to themselves.
    assert stored_quantity(stored) == stored
    assert stored_quantity(stored, resource_list=True) == stored_quantity(
        stored_quantity(stored, resource_list=True), resource_list=True
    )


@pytest.mark.parametrize("given", REFUSED)
def test_what_the_apiserver_refuses_is_not_a_quantity(given: str) -> None:
    with pytest.raises(ValueError, match="quantity"):
        stored_quantity(given)


def test_values_are_exact_at_any_length() -> None:
    forty = "1234567890123456789012345678901234567891"
    assert quantity_value(forty) == Decimal(forty)
    assert quantity_value(forty) != quantity_value(forty[:-1] + "2")
    assert quantity_value("1.5Gi") == 1536 * 2**20
    assert quantity_value("1234567890123456789012345678901234567890Ki") == 2**63 - 1  # capped
    assert quantity_value("1e40") == Decimal(10) ** 40  # decimal quantities are not capped
    assert quantity_value("0.0000000001") == Decimal("1e-9")  # rounded up to nano units
    assert quantity_value("0.0000000001", resource_list=True) == Decimal("0.001")
    assert parse_quantity("1.5Gi").format == "BinarySI"


# --- what drift makes of them ------------------------------------------------------------


def container(requests: dict[str, object], limits: dict[str, object]) -> dict[str, object]:
    return {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "c", "resources": {"requests": requests, "limits": limits}}
                    ],
                    "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": requests["memory"]}}],
                }
            }
        }
    }


@pytest.mark.parametrize(("given", "stored"), APISERVER.items(), ids=list(APISERVER))
def test_a_converged_object_has_no_drift(given: str, stored: tuple[str, str]) -> None:
    in_resource_list, plain = stored
    desired = container({"memory": sent(given)}, {"memory": sent(given)})
    live = container({"memory": in_resource_list}, {"memory": in_resource_list})
    live["spec"]["template"]["spec"]["volumes"][0]["emptyDir"]["sizeLimit"] = plain  # type: ignore[index]
    assert drift(desired, live) == []


def test_a_changed_quantity_is_drift() -> None:
    live = container({"memory": "9223372036854775807", "cpu": "1"}, {"memory": "1536Mi"})
    desired = container({"memory": "9223372036854775806", "cpu": "1001m"}, {"memory": "1.5Gi"})
    assert drift(desired, live) == [
        ".spec.template.spec.containers[0].resources.requests.memory",
        ".spec.template.spec.containers[0].resources.requests.cpu",
        ".spec.template.spec.volumes[0].emptyDir.sizeLimit",
    ]
    # 40 digits that differ in the last one: exact, not rounded to 28 digits.
    forty = "1234567890123456789012345678901234567890"
    assert drift({"a": forty}, {"a": forty[:-1] + "1"}) == [".a"]


def test_rounding_to_milli_units_is_for_resource_lists_only() -> None:
    # 100n is stored as 1m in a ResourceList, and as 100n elsewhere (e.g. an HPA target).
    assert drift(container({"memory": "100n"}, {}), container({"memory": "1m"}, {})) == [
        ".spec.template.spec.volumes[0].emptyDir.sizeLimit"
    ]
    target = {"target": {"averageValue": "100n"}}
    assert drift(target, {"target": {"averageValue": "100n"}}) == []
    assert drift(target, {"target": {"averageValue": "1m"}}) == [".target.averageValue"]
    assert drift({"overhead": {"cpu": "100n"}}, {"overhead": {"cpu": "1m"}}) == []


def test_a_string_the_apiserver_keeps_verbatim_is_compared_verbatim() -> None:
    # "+1" is stored as "+1": a live "1" does not carry it (apply would write "+1").
    assert drift({"cpu": "+1"}, {"cpu": "1"}) == [".cpu"]
    assert drift({"cpu": "+1"}, {"cpu": "+1"}) == []
    assert drift({"cpu": "1000m"}, {"cpu": "1"}) == []
