"""Operator settings from the environment: defaults, and a bad value named at start-up."""

from __future__ import annotations

import pytest

from harness_operator.config import OperatorConfig


def test_pool_sizes_default_and_read_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HARNESS_PASS_WORKERS", "HARNESS_QUERY_WORKERS", "HARNESS_QUERY_PER_PROMETHEUS"):
        monkeypatch.delenv(name, raising=False)
    config = OperatorConfig.from_env()
    assert (config.pass_workers, config.query_workers, config.query_per_prometheus) == (8, 16, 4)
    monkeypatch.setenv("HARNESS_PASS_WORKERS", "3")
    monkeypatch.setenv("HARNESS_QUERY_PER_PROMETHEUS", "1")
    config = OperatorConfig.from_env()
    assert (config.pass_workers, config.query_per_prometheus) == (3, 1)


@pytest.mark.parametrize("value", ["0", "-2", "2.5", "many"])
def test_a_bad_pool_size_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("HARNESS_QUERY_WORKERS", value)
    with pytest.raises(ValueError, match="HARNESS_QUERY_WORKERS must be a whole number"):
        OperatorConfig.from_env()
