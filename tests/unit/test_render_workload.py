"""The stable and canary Deployments and their pod template."""

from __future__ import annotations

from typing import Any

from harness_operator.naming import Track
from harness_operator.render import HarnessRef, ReleaseState, render_deployment, revision
from unit.render_helpers import HD, app_container, in_release, quickstart, spec


def deployment(s: Any, track: Track = Track.STABLE, state: ReleaseState | None = None) -> Any:
    return render_deployment(HD, s, state or ReleaseState.at_rest(s), track)


def test_names_selectors_and_labels() -> None:
    s = spec()
    for track in Track:
        d = deployment(s, track)
        assert d["apiVersion"] == "apps/v1"
        assert d["metadata"]["name"] == f"pr-reviewer-{track}"
        assert d["metadata"]["namespace"] == "agents"
        selector = {"harness.dev/name": "pr-reviewer", "harness.dev/track": str(track)}
        assert d["spec"]["selector"] == {"matchLabels": selector}
        assert selector.items() <= d["metadata"]["labels"].items()
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= pod_labels.items()
        assert pod_labels["harness.dev/revision"] == revision(s, {})


def test_restricted_security_context() -> None:
    d = deployment(spec())
    pod = d["spec"]["template"]["spec"]
    assert pod["securityContext"] == {
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    security = app_container(d)["securityContext"]
    assert security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod


def test_service_account_mounts_its_token() -> None:
    pod = deployment(spec(podTemplate={"serviceAccountName": "agent"}))["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "agent"
    assert pod["automountServiceAccountToken"] is True


def test_writable_tmp() -> None:
    d = deployment(spec())
    pod = d["spec"]["template"]["spec"]
    assert {"name": "harness-tmp", "emptyDir": {"sizeLimit": "1Gi"}} in pod["volumes"]
    assert {"name": "harness-tmp", "mountPath": "/tmp"} in app_container(d)["volumeMounts"]


def test_user_tmp_mount_replaces_ours() -> None:
    s = spec(
        podTemplate={
            "volumes": [{"name": "scratch", "emptyDir": {"sizeLimit": "10Gi"}}],
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        }
    )
    d = deployment(s)
    assert [v["name"] for v in d["spec"]["template"]["spec"]["volumes"]] == ["scratch"]
    assert app_container(d)["volumeMounts"] == [{"name": "scratch", "mountPath": "/tmp"}]


def test_replicas_without_autoscaling() -> None:
    s = spec(replicas=3)
    assert deployment(s)["spec"]["replicas"] == 3
    assert deployment(s, Track.CANARY)["spec"]["replicas"] == 0
    state = in_release(s, s, replicas=2)
    assert deployment(s, Track.CANARY, state)["spec"]["replicas"] == 2
    assert deployment(s, Track.STABLE, state)["spec"]["replicas"] == 3


def test_no_replicas_where_an_hpa_owns_them() -> None:
    s = quickstart()
    assert "replicas" not in deployment(s)["spec"]
    # At rest the canary has no HPA and is held at zero.
    assert deployment(s, Track.CANARY)["spec"]["replicas"] == 0
    state = in_release(s, s)
    assert "replicas" not in deployment(s, Track.STABLE, state)["spec"]
    assert "replicas" not in deployment(s, Track.CANARY, state)["spec"]


def test_default_resource_requests() -> None:
    assert app_container(deployment(spec()))["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"}
    }
    # A limit alone implies the request; a default request above it would be invalid.
    limited = spec(resources={"limits": {"memory": "256Mi"}})
    assert app_container(deployment(limited))["resources"] == {
        "requests": {"cpu": "250m"},
        "limits": {"memory": "256Mi"},
    }
    given = quickstart()
    assert app_container(deployment(given))["resources"] == {
        "requests": {"cpu": "250m", "memory": "512Mi"},
        "limits": {"memory": "1Gi"},
    }


def test_ports_probes_and_scrape_annotations() -> None:
    d = deployment(quickstart())
    c = app_container(d)
    assert c["ports"] == [{"name": "http", "containerPort": 8000, "protocol": "TCP"}]
    assert c["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert c["readinessProbe"]["httpGet"] == {"path": "/ready", "port": "http"}
    assert "startupProbe" not in c
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": "8000",
        "prometheus.io/path": "/metrics",
    }


def test_separate_metrics_port_and_startup_probe() -> None:
    s = spec(metrics={"port": 9090, "path": "/m"}, probes={"startup": {"failureThreshold": 10}})
    d = deployment(s)
    c = app_container(d)
    assert c["ports"][1] == {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
    assert c["startupProbe"]["failureThreshold"] == 10
    assert c["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    annotations = d["spec"]["template"]["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == ("9090", "/m")


def test_user_annotations_may_override_scrape_settings() -> None:
    s = spec(podTemplate={"annotations": {"prometheus.io/scrape": "false", "team": "x"}})
    annotations = deployment(s)["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "false"
    assert annotations["team"] == "x"


def test_termination_and_pre_stop() -> None:
    d = deployment(spec(terminationGracePeriodSeconds=600, preStopDelaySeconds=15))
    assert d["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 600
    assert app_container(d)["lifecycle"] == {"preStop": {"sleep": {"seconds": 15}}}
    assert "lifecycle" not in app_container(deployment(spec(preStopDelaySeconds=0)))


def test_topology_spread_per_track() -> None:
    (constraint,) = deployment(spec(), Track.CANARY)["spec"]["template"]["spec"][
        "topologySpreadConstraints"
    ]
    assert constraint["topologyKey"] == "kubernetes.io/hostname"
    assert constraint["whenUnsatisfiable"] == "ScheduleAnyway"
    assert constraint["labelSelector"] == {
        "matchLabels": {"harness.dev/name": "pr-reviewer", "harness.dev/track": "canary"}
    }


def test_env_and_env_from_pass_through() -> None:
    env = [
        {"name": "A", "value": "1"},
        {"name": "KEY", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "k"}}},
    ]
    env_from = [{"configMapRef": {"name": "settings"}, "prefix": "S_"}]
    c = app_container(deployment(spec(env=env, envFrom=env_from)))
    assert c["env"] == env
    assert c["envFrom"] == env_from
    assert "env" not in app_container(deployment(spec()))


def test_pod_template_overrides() -> None:
    s = spec(
        imagePullPolicy="Always",
        command=["run"],
        args=["--fast"],
        podTemplate={
            "labels": {"team": "a", "app.kubernetes.io/name": "mine"},
            "nodeSelector": {"pool": "agents"},
            "tolerations": [{"key": "k", "operator": "Exists"}],
            "affinity": {"nodeAffinity": {}},
            "runtimeClassName": "gvisor",
            "priorityClassName": "high",
            "imagePullSecrets": ["pull"],
        },
    )
    d = deployment(s)
    pod = d["spec"]["template"]["spec"]
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["team"] == "a"
    assert labels["app.kubernetes.io/name"] == "pr-reviewer"  # ours win
    assert pod["nodeSelector"] == {"pool": "agents"}
    assert pod["tolerations"] == [{"key": "k", "operator": "Exists"}]
    assert pod["affinity"] == {"nodeAffinity": {}}
    assert pod["runtimeClassName"] == "gvisor"
    assert pod["priorityClassName"] == "high"
    assert pod["imagePullSecrets"] == [{"name": "pull"}]
    c = app_container(d)
    assert (c["imagePullPolicy"], c["command"], c["args"]) == ("Always", ["run"], ["--fast"])


def test_each_track_runs_its_own_spec() -> None:
    stable, canary = spec(), spec(image="ghcr.io/acme/pr-reviewer:1.5.0")
    state = in_release(stable, canary)
    s = render_deployment(HD, canary, state, Track.STABLE)
    c = render_deployment(HD, canary, state, Track.CANARY)
    assert app_container(s)["image"].endswith(":1.4.0")
    assert app_container(c)["image"].endswith(":1.5.0")
    assert (
        s["spec"]["template"]["metadata"]["labels"]["harness.dev/revision"]
        != c["spec"]["template"]["metadata"]["labels"]["harness.dev/revision"]
    )


def test_config_hash_annotation_rolls_pods() -> None:
    s = spec()
    hashes = {"Secret/creds": "aaa"}
    state = ReleaseState.at_rest(s, hashes)
    annotations = render_deployment(HD, s, state, Track.STABLE)["spec"]["template"]["metadata"][
        "annotations"
    ]
    changed = ReleaseState.at_rest(s, {"Secret/creds": "bbb"})
    changed_annotations = render_deployment(HD, s, changed, Track.STABLE)["spec"]["template"][
        "metadata"
    ]["annotations"]
    assert annotations["harness.dev/config-hash"] != changed_annotations["harness.dev/config-hash"]


def test_stable_can_keep_its_config_during_a_release() -> None:
    s = spec()
    state = ReleaseState(
        stable_spec=s,
        canary_spec=s,
        canary_replicas=1,
        config_hashes={"Secret/creds": "new"},
        stable_config_hashes={"Secret/creds": "old"},
    )
    stable = render_deployment(HD, s, state, Track.STABLE)["spec"]["template"]["metadata"]
    canary = render_deployment(HD, s, state, Track.CANARY)["spec"]["template"]["metadata"]
    assert stable["labels"]["harness.dev/revision"] == revision(s, {"Secret/creds": "old"})
    assert canary["labels"]["harness.dev/revision"] == revision(s, {"Secret/creds": "new"})


def test_progress_deadline_comes_from_rollout() -> None:
    d = deployment(spec(rollout={"progressDeadlineSeconds": 120}))
    assert d["spec"]["progressDeadlineSeconds"] == 120
    assert d["spec"]["strategy"]["rollingUpdate"] == {"maxSurge": "25%", "maxUnavailable": 0}


def test_other_namespace() -> None:
    other = HarnessRef(name="a", namespace="b", uid="u")
    s = spec()
    d = render_deployment(other, s, ReleaseState.at_rest(s), Track.STABLE)
    assert (d["metadata"]["name"], d["metadata"]["namespace"]) == ("a-stable", "b")
