"""The Helm chart: lint, schema-valid manifests, and the properties operators rely on."""

from __future__ import annotations

from typing import Any

import kubernetes_validate  # type: ignore[import-untyped]  # no type information
import pytest
import yaml

from tests.deploy.conftest import (
    CHART,
    KUBE_VERSION,
    PRODUCTION,
    REPO,
    Manifest,
    Render,
    named,
    of_kind,
    run_helm,
    template_args,
)

SERVICES = ("ingest", "engine", "scoring", "messaging")
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Kafka", "KafkaNodePool", "ScaledObject"}
"""Custom resources: Kubernetes' schemas do not cover them; they are checked below."""

VARIANTS = {
    "default": ((), ()),
    "production": ((PRODUCTION,), ()),
    "strimzi": ((), ("strimzi.enabled=true", "serviceMonitor.enabled=true")),
    "keda": ((), tuple(f"{c}.autoscaling.keda.enabled=true" for c in ("engine", "messaging"))),
}


def _pods(manifests: list[Manifest]) -> list[tuple[str, dict[str, Any]]]:
    """Every pod template, named by its owner."""
    return [
        (f"{m['kind']}/{m['metadata']['name']}", m["spec"]["template"]["spec"])
        for m in manifests
        if m["kind"] in ("Deployment", "Job")
    ]


@pytest.mark.parametrize("values", [(), (PRODUCTION,)], ids=["default", "production"])
def test_helm_lint_passes_strictly(helm: str, values: tuple[str, ...]) -> None:
    args = ["lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION]
    for file in values:
        args += ["--values", str(file)]
    result = run_helm(helm, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("variant", VARIANTS)
def test_rendered_manifests_match_the_kubernetes_schemas(render: Render, variant: str) -> None:
    values, sets = VARIANTS[variant]
    manifests = render(values, sets)
    checked = 0
    for manifest in manifests:
        if manifest["kind"] in CUSTOM_KINDS:
            continue
        # strict: unknown fields are errors too; the schemas ship with the package (offline).
        kubernetes_validate.validate(manifest, KUBE_VERSION, strict=True)
        checked += 1
    assert checked >= 20


def test_the_schema_check_catches_a_wrong_manifest() -> None:
    wrong = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "x"},
        "spec": {"selector": {}, "template": {"spec": {"containers": [{"name": "x"}]}}},
        "replica": 2,
    }
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(wrong, KUBE_VERSION, strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_pod_runs_locked_down(render: Render, variant: str) -> None:
    values, sets = VARIANTS[variant]
    pods = _pods(render(values, sets))
    assert pods
    for owner, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, owner
        assert pod["securityContext"]["runAsUser"] > 0, owner
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, owner
        assert pod["automountServiceAccountToken"] is False, owner
        tmp = {v["name"]: v for v in pod["volumes"]}["tmp"]
        assert "emptyDir" in tmp, owner
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, owner
            assert context["allowPrivilegeEscalation"] is False, owner
            assert context["capabilities"]["drop"] == ["ALL"], owner
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], owner


@pytest.mark.parametrize("variant", VARIANTS)
def test_every_service_container_has_its_probes_resources_and_command(
    render: Render, variant: str
) -> None:
    values, sets = VARIANTS[variant]
    deployments = of_kind(render(values, sets), "Deployment")
    assert len(deployments) == len(SERVICES)
    for service in SERVICES:
        pod = named(deployments, "Deployment", f"-{service}")["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        assert container["args"] == [service]
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
        keys = {c["topologyKey"] for c in pod["topologySpreadConstraints"]}
        assert keys == {"topology.kubernetes.io/zone", "kubernetes.io/hostname"}


def test_each_service_has_a_service_pdb_networkpolicy_and_hpa(render: Render) -> None:
    manifests = render()
    for service in SERVICES:
        for kind in ("Service", "PodDisruptionBudget", "NetworkPolicy", "HorizontalPodAutoscaler"):
            named(manifests, kind, f"-{service}")
    assert not of_kind(manifests, "Ingress")
    assert of_kind(render((PRODUCTION,)), "Ingress")


def test_the_console_and_its_admin_apis_are_routed_only_when_asked(render: Render) -> None:
    def routes(*sets: str) -> dict[str, tuple[str, str]]:
        (ingress,) = of_kind(render((PRODUCTION,), sets), "Ingress")
        rule = ingress["spec"]["rules"][0]
        return {
            p["path"]: (p["pathType"], p["backend"]["service"]["name"].rsplit("-", 1)[1])
            for p in rule["http"]["paths"]
        }

    console = routes()
    assert console["/"] == ("Exact", "ingest")
    assert console["/console"] == console["/api/console"] == ("Prefix", "ingest")
    for service in ("engine", "scoring", "messaging"):
        assert console[f"/api/{service}"] == ("Prefix", service)
    assert console["/api/simulation"] == ("Prefix", "messaging")
    assert set(routes("ingress.console=false")) == {"/v1", "/docs", "/openapi.json"}
    assert "/api/scoring" not in routes("scoring.enabled=false")
    assert not {"/api/messaging", "/api/simulation"} & set(routes("messaging.enabled=false"))


def test_without_an_admin_token_secret_no_token_is_set(render: Render) -> None:
    """No default token: the admin APIs stay closed until `milepost admin-token create`."""
    manifests = render()
    for owner, pod in _pods(manifests):
        names = [e["name"] for c in pod["containers"] for e in c.get("env", [])]
        assert not [n for n in names if n.endswith("_ADMIN_TOKEN")], owner


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["engine.autoscaling.maxReplicas=13"],
            "engine: 13 replicas but topics.partitions.events is 12",
        ),
        (
            ["scoring.autoscaling.enabled=false", "scoring.replicaCount=13"],
            "scoring: 13 replicas but topics.partitions.events is 12",
        ),
        (
            ["topics.partitions.triggers=4", "messaging.autoscaling.maxReplicas=6"],
            "messaging: 6 replicas but topics.partitions.triggers is 4",
        ),
        (
            ["ingest.autoscaling.minReplicas=5", "ingest.autoscaling.maxReplicas=3"],
            "ingest: autoscaling.minReplicas (5) is above autoscaling.maxReplicas (3)",
        ),
    ],
)
def test_replicas_beyond_the_partitions_are_refused_with_the_reason(
    helm: str, sets: list[str], message: str
) -> None:
    result = run_helm(helm, *template_args((), sets))
    assert result.returncode != 0
    assert message in result.stderr
    assert "cannot use more consumers than the topic has partitions" in result.stderr or (
        "minReplicas" in message
    )


def test_hpa_bounds_stay_within_the_partitions(render: Render) -> None:
    for values in ((), (PRODUCTION,)):
        manifests = render(values)
        partitions = yaml.safe_load((values[0] if values else CHART / "values.yaml").read_text())
        counts = partitions["topics"]["partitions"]
        caps = {"engine": counts["events"], "scoring": counts["events"]}
        caps["messaging"] = counts["triggers"]
        for hpa in of_kind(manifests, "HorizontalPodAutoscaler"):
            service = hpa["metadata"]["labels"]["app.kubernetes.io/component"]
            assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
            if service in caps:
                assert hpa["spec"]["maxReplicas"] <= caps[service]


def test_larger_partitions_allow_more_replicas(render: Render) -> None:
    manifests = render((), ("topics.partitions.events=24", "engine.autoscaling.maxReplicas=24"))
    assert named(manifests, "HorizontalPodAutoscaler", "-engine")["spec"]["maxReplicas"] == 24
    topics = named(manifests, "Job", "-topics")["spec"]["template"]["spec"]["containers"][0]
    assert "milepost.events=24" in topics["args"]


def test_keda_scales_a_consumer_on_its_lag_within_the_partitions(render: Render) -> None:
    manifests = render(
        (),
        (
            "engine.autoscaling.keda.enabled=true",
            "engine.autoscaling.keda.lagThreshold=500",
            "kafka.topicPrefix=prod.",
            "topics.partitions.events=6",
            "engine.autoscaling.maxReplicas=6",
            "scoring.autoscaling.maxReplicas=6",
        ),
    )
    scaled = named(manifests, "ScaledObject", "-engine")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    assert (
        spec["scaleTargetRef"]["name"]
        == named(manifests, "Deployment", "-engine")["metadata"]["name"]
    )
    assert (spec["minReplicaCount"], spec["maxReplicaCount"]) == (2, 6)
    lag, cpu = spec["triggers"]
    assert lag["type"] == "kafka"
    assert lag["metadata"] == {
        "bootstrapServers": "kafka:9092",
        "consumerGroup": "milepost-engine",
        "topic": "prod.milepost.events",
        "lagThreshold": "500",
        "activationLagThreshold": "0",
        "offsetResetPolicy": "earliest",
        "allowIdleConsumers": "false",
    }
    assert cpu == {"type": "cpu", "metricType": "Utilization", "metadata": {"value": "70"}}
    behavior = spec["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert behavior["scaleDown"]["stabilizationWindowSeconds"] == 600
    # KEDA makes the engine's HPA; the others keep the chart's
    hpas = {
        h["metadata"]["labels"]["app.kubernetes.io/component"]
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    assert hpas == {"ingest", "scoring", "messaging"}


def test_keda_is_off_by_default_and_reads_another_group_with_auth(render: Render) -> None:
    assert not of_kind(render(), "ScaledObject")
    manifests = render(
        (),
        (
            "messaging.autoscaling.keda.enabled=true",
            "messaging.autoscaling.keda.consumerGroup=team-a-messaging",
            "messaging.autoscaling.keda.authenticationRef=kafka-sasl",
        ),
    )
    (lag, _) = named(manifests, "ScaledObject", "-messaging")["spec"]["triggers"]
    assert lag["metadata"]["consumerGroup"] == "team-a-messaging"
    assert lag["metadata"]["topic"] == "milepost.triggers"
    assert lag["authenticationRef"] == {"name": "kafka-sasl"}


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (
            ["engine.autoscaling.keda.enabled=true", "engine.autoscaling.maxReplicas=13"],
            "engine: 13 replicas but topics.partitions.events is 12",
        ),
        (["ingest.autoscaling.keda.enabled=true"], "ingest consumes no topic"),
    ],
)
def test_keda_refuses_replicas_it_cannot_use(helm: str, sets: list[str], message: str) -> None:
    result = run_helm(helm, *template_args((), sets))
    assert result.returncode != 0
    assert message in result.stderr


def _hook(job: Manifest) -> tuple[set[str], int]:
    annotations = job["metadata"]["annotations"]
    return set(annotations["helm.sh/hook"].split(",")), int(annotations["helm.sh/hook-weight"])


def test_migrations_run_before_the_topics_before_install_and_upgrade(render: Render) -> None:
    manifests = render()
    migrate = named(manifests, "Job", "-migrate")
    topics = named(manifests, "Job", "-topics")
    migrate_hooks, migrate_weight = _hook(migrate)
    topic_hooks, topic_weight = _hook(topics)
    assert migrate_hooks == topic_hooks == {"pre-install", "pre-upgrade"}
    assert migrate_weight < topic_weight
    account_hooks, account_weight = _hook(named(manifests, "ServiceAccount", "-hooks"))
    assert migrate_hooks <= account_hooks
    assert account_weight < migrate_weight
    assert migrate["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    args = topics["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[:4] == ["kafka", "ensure-topics", "--replication-factor", "3"]
    assert "milepost.events=12" in args
    assert "milepost.triggers=12" in args


def test_with_strimzi_the_topics_wait_for_the_cluster(render: Render) -> None:
    manifests = render((), ("strimzi.enabled=true",))
    hooks, _ = _hook(named(manifests, "Job", "-topics"))
    assert hooks == {"post-install", "post-upgrade"}
    assert _hook(named(manifests, "Job", "-migrate"))[0] == {"pre-install", "pre-upgrade"}


def test_strimzi_resources_only_with_the_flag(render: Render) -> None:
    assert not [m for m in render() if m["kind"] in ("Kafka", "KafkaNodePool")]
    manifests = render((), ("strimzi.enabled=true",))
    kafka = named(manifests, "Kafka", "milepost")
    pool = named(manifests, "KafkaNodePool", "-dual")
    assert kafka["apiVersion"] == pool["apiVersion"] == "kafka.strimzi.io/v1beta2"
    assert kafka["metadata"]["annotations"]["strimzi.io/kraft"] == "enabled"
    assert kafka["metadata"]["annotations"]["strimzi.io/node-pools"] == "enabled"
    assert "zookeeper" not in kafka["spec"]
    assert kafka["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False
    assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    assert sorted(pool["spec"]["roles"]) == ["broker", "controller"]
    assert pool["spec"]["replicas"] == 3
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    for _, pod in _pods(manifests):
        env = {e["name"]: e for e in pod["containers"][0]["env"]}
        assert env["MILEPOST_KAFKA_BOOTSTRAP_SERVERS"]["value"] == bootstrap


_SECRET_LIKE = ("DATABASE_URL", "PASSWORD", "SECRET", "TOKEN", "USERNAME")


@pytest.mark.parametrize("variant", VARIANTS)
def test_secrets_are_referenced_never_inlined(render: Render, variant: str) -> None:
    values, sets = VARIANTS[variant]
    manifests = render(values, sets)
    assert not of_kind(manifests, "Secret")
    assert "postgresql+asyncpg://" not in yaml.safe_dump_all(manifests)
    for owner, pod in _pods(manifests):
        for container in pod["containers"]:
            for variable in container["env"]:
                if any(part in variable["name"] for part in _SECRET_LIKE):
                    assert "value" not in variable, (owner, variable["name"])
                    assert variable["valueFrom"]["secretKeyRef"]["name"], (owner, variable)


def test_production_reads_every_secret_from_its_existing_secret(render: Render) -> None:
    manifests = render((PRODUCTION,))
    pod = named(manifests, "Deployment", "-messaging")["spec"]["template"]["spec"]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in pod["containers"][0]["env"]
        if "valueFrom" in e
    }
    assert refs["MILEPOST_DATABASE_URL"] == {"name": "milepost-database", "key": "url"}
    assert refs["MILEPOST_MESSAGING_SMTP_PASSWORD"] == {"name": "milepost-smtp", "key": "password"}
    assert refs["MILEPOST_MESSAGING_WEBHOOK_SECRET"]["name"] == "milepost-webhooks"
    assert refs["MILEPOST_MESSAGING_ADMIN_TOKEN"] == {
        "name": "milepost-admin-tokens",
        "key": "messaging",
    }
    ingest = named(manifests, "Deployment", "-ingest")["spec"]["template"]["spec"]
    assert not [e for e in ingest["containers"][0]["env"] if "ADMIN_TOKEN" in e["name"]]


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        (["logLevel=LOUD"], "at '/logLevel': value must be one of"),
        (["topics.partitions.events=0"], "at '/topics/partitions/events': minimum: got 0, want 1"),
        (["database.existingSecret="], "at '/database/existingSecret'"),
        (["kafka.bootstrapServers=kafka"], "at '/kafka/bootstrapServers'"),
        (["ingest.replicas=3"], "at '/ingest': additional properties 'replicas' not allowed"),
        (["definitions.growthPaths.migration=move"], "at '/definitions/growthPaths/migration'"),
        (["topics.retention.milepost\\.events=7 days"], "at '/topics/retention/milepost.events'"),
        (["messaging.enabled=true", "webhooks.existingSecret="], "at '/webhooks/existingSecret'"),
    ],
)
def test_bad_values_fail_the_install_naming_the_value(
    helm: str, sets: list[str], message: str
) -> None:
    result = run_helm(helm, *template_args((), sets))
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert message in result.stderr


def test_growth_paths_are_published_from_the_values_after_install(render: Render) -> None:
    reference = REPO / "services" / "node_engine" / "paths" / "reference" / "platform-merchant.yaml"
    manifests = render(
        (),
        ("definitions.growthPaths.workspace=acme",),
        (f"definitions.growthPaths.files.platform-merchant\\.yaml={reference}",),
    )
    config = named(manifests, "ConfigMap", "-growth-paths")
    assert config["data"]["platform-merchant.yaml"] == reference.read_text()
    job = named(manifests, "Job", "-publish-paths")
    hooks, weight = _hook(job)
    assert hooks == {"post-install", "post-upgrade"}
    assert weight > 0
    pod = job["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["paths"]["configMap"]["name"] == config["metadata"]["name"]
    env = {e["name"]: e.get("value") for e in pod["containers"][0]["env"]}
    assert env["WORKSPACE"] == "acme"
    assert env["MIGRATION"] == "pin"
    assert "milepost paths publish" in pod["containers"][0]["args"][0]


def test_definitions_can_come_from_existing_configmaps(render: Render) -> None:
    manifests = render((PRODUCTION,))
    assert not [m for m in of_kind(manifests, "ConfigMap") if "milepost.json" not in m["data"]]
    publish = named(manifests, "Job", "-publish-paths")["spec"]["template"]["spec"]
    assert {"name": "paths", "configMap": {"name": "milepost-growth-paths"}} in publish["volumes"]
    scoring = named(manifests, "Deployment", "-scoring")["spec"]["template"]["spec"]
    assert {"name": "metrics", "configMap": {"name": "milepost-metric-definitions"}} in scoring[
        "volumes"
    ]
    messaging = named(manifests, "Deployment", "-messaging")["spec"]["template"]["spec"]
    assert {"name": "playbooks", "configMap": {"name": "milepost-playbooks"}} in messaging[
        "volumes"
    ]


def test_growth_path_files_need_a_workspace(helm: str) -> None:
    args = template_args((), ("definitions.growthPaths.existingConfigMap=paths",))
    result = run_helm(helm, *args)
    assert result.returncode != 0
    assert "definitions.growthPaths.workspace is required" in result.stderr


def test_network_policies_admit_ingest_from_anywhere_only_when_asked(render: Render) -> None:
    def open_ports(manifests: list[Manifest], service: str) -> bool:
        policy = named(manifests, "NetworkPolicy", f"-{service}")
        return any("from" not in rule for rule in policy["spec"]["ingress"])

    default = render()
    assert open_ports(default, "ingest")
    assert not any(open_ports(default, s) for s in ("engine", "scoring", "messaging"))
    assert not open_ports(render((PRODUCTION,)), "ingest")


def test_monitoring_carries_the_plain_rules_file_and_dashboard(render: Render) -> None:
    manifests = render((PRODUCTION,))
    rule = named(manifests, "PrometheusRule", "milepost")
    plain = yaml.safe_load((REPO / "deploy" / "prometheus" / "milepost.rules.yaml").read_text())
    assert rule["spec"] == plain
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    monitor = named(manifests, "ServiceMonitor", "milepost")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["port"] == "http"
    assert endpoint["path"] == "/metrics"
    assert endpoint["relabelings"][0]["targetLabel"] == "component"
    dashboard = named(manifests, "ConfigMap", "-dashboard")
    assert dashboard["data"]["milepost.json"] == (
        (REPO / "deploy" / "grafana" / "milepost.json").read_text().rstrip("\n")
    )
    assert dashboard["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert not [m for m in render() if m["kind"] in ("ServiceMonitor", "PrometheusRule")]
