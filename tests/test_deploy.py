"""Offline checks of everything an operator deploys: Kubernetes overlays, compose, rules,
dashboard, Dockerfiles. Needs kubectl (kustomize), promtool (Debian's prometheus),
kubernetes-validate, check-jsonschema and hadolint; `make deploy-check` installs the last
ones. A missing tool fails the test: a check that silently skips proves nothing.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from vitrine_schemas.topics import TOPICS, TOPICS_BY_NAME

ROOT = Path(__file__).resolve().parents[1]
K8S = ROOT / "deploy/k8s"
OVERLAYS = ("dev", "prod")
SERVICES = ("catalog", "checkout", "commission", "live", "detector")
RULES = ROOT / "deploy/prometheus/rules/vitrine.rules.yml"
DASHBOARD = ROOT / "deploy/grafana/dashboards/vitrine.json"
RUNBOOK = ROOT / "docs/operations.md"
# Custom resources kubernetes-validate has no schema for: checked against our own.
CRD_SCHEMAS = {
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): "kafkatopic",
    ("monitoring.coreos.com/v1", "ServiceMonitor"): "servicemonitor",
    ("monitoring.coreos.com/v1", "PrometheusRule"): "prometheusrule",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject",
}


def tool(name: str) -> str:
    """A tool from the venv or PATH; fail (not skip) when it is missing."""
    venv_tool = Path(sys.executable).parent / name
    found = str(venv_tool) if venv_tool.exists() else shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: run `make deploy-check` (it installs it)")
    return found


def run(*argv: str, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, input=input_text, capture_output=True, text=True, timeout=120)


@cache
def rendered_text(overlay: str) -> str:
    result = run(tool("kubectl"), "kustomize", str(K8S / "overlays" / overlay))
    assert result.returncode == 0, result.stderr
    return result.stdout


def rendered(overlay: str) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(rendered_text(overlay)) if doc]


def of_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def kubernetes_validate(
    docs: list[dict[str, Any]], tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    core = [d for d in docs if (d["apiVersion"], d["kind"]) not in CRD_SCHEMAS]
    path = tmp_path / "core.yaml"
    path.write_text(yaml.safe_dump_all(core))
    return run(tool("kubernetes-validate"), "--strict", "--quiet", str(path))


def crd_errors(docs: list[dict[str, Any]]) -> list[str]:
    errors = []
    for doc in docs:
        key = (doc["apiVersion"], doc["kind"])
        if key not in CRD_SCHEMAS:
            continue
        schema = json.loads((K8S / "schemas" / f"{CRD_SCHEMAS[key]}.schema.json").read_text())
        for error in jsonschema.Draft202012Validator(schema).iter_errors(doc):
            where = "/".join(str(p) for p in error.absolute_path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']} {where}: {error.message}")
    return errors


# --- Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_and_passes_strict_validation(overlay: str, tmp_path: Path) -> None:
    docs = rendered(overlay)
    result = kubernetes_validate(docs, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ERROR" not in result.stdout
    # Nothing slips through unvalidated: every kind is core (a schema in
    # kubernetes-validate) or a custom resource with a schema of ours.
    assert "Couldn't find schema" not in result.stdout
    assert crd_errors(docs) == []


def _mutations() -> list[tuple[str, str, Any]]:
    """(kind, description, mutate) — each a mistake a person could commit."""

    def typo_probe(d: dict[str, Any]) -> None:
        container = d["spec"]["template"]["spec"]["containers"][0]
        container["readinesProbe"] = container.pop("readinessProbe")

    def bad_port(d: dict[str, Any]) -> None:
        d["spec"]["ports"][0]["port"] = "eighty"

    def typo_trigger(d: dict[str, Any]) -> None:
        d["spec"]["triggers"][0]["metadata"]["consumerGroupp"] = "catalog"

    def bad_topic(d: dict[str, Any]) -> None:
        d["spec"]["partitons"] = d["spec"].pop("partitions")

    def bad_duration(d: dict[str, Any]) -> None:
        d["spec"]["endpoints"][0]["interval"] = "30 seconds"

    return [
        ("Deployment", "readinessProbe misspelt", typo_probe),
        ("Service", "port as a word", bad_port),
        ("ScaledObject", "KEDA trigger key misspelt", typo_trigger),
        ("KafkaTopic", "partitions misspelt", bad_topic),
        ("ServiceMonitor", "interval not a duration", bad_duration),
    ]


@pytest.mark.parametrize(
    ("kind", "mutate"), [pytest.param(kind, mutate, id=what) for kind, what, mutate in _mutations()]
)
def test_a_broken_manifest_field_fails_validation(kind: str, mutate: Any, tmp_path: Path) -> None:
    docs = copy.deepcopy(rendered("prod"))
    target = next(d for d in docs if d["kind"] == kind)
    assert kubernetes_validate([target], tmp_path).returncode == 0
    assert crd_errors([target]) == []
    mutate(target)
    if (target["apiVersion"], target["kind"]) in CRD_SCHEMAS:
        assert crd_errors([target]), f"the broken {kind} passed our schema"
    else:
        result = kubernetes_validate([target], tmp_path)
        assert result.returncode != 0, f"the broken {kind} passed kubernetes-validate --strict"
        assert "ERROR" in result.stdout


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_pod_is_non_root_read_only_probed_and_bounded(overlay: str) -> None:
    deployments = of_kind(rendered(overlay), "Deployment")
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] != 0, name
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault", name
        (container,) = pod["containers"]
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True, name
        assert security["allowPrivilegeEscalation"] is False, name
        assert security["capabilities"]["drop"] == ["ALL"], name
        tmp = {m["name"] for m in container["volumeMounts"] if m["mountPath"] == "/tmp"}
        assert any("emptyDir" in v for v in pod["volumes"] if v["name"] in tmp), name
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz", name
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz", name
        assert "startupProbe" in container, name
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][bound]), name
        assert ":" in container["image"], name
        assert not container["image"].endswith(":latest"), name


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_service_has_a_budget_and_an_autoscaler(overlay: str) -> None:
    docs = rendered(overlay)
    assert set(of_kind(docs, "PodDisruptionBudget")) == set(SERVICES)
    scaled = of_kind(docs, "ScaledObject")
    hpas = of_kind(docs, "HorizontalPodAutoscaler")
    assert set(scaled) == {"catalog", "detector"}
    assert set(hpas) | set(scaled) == set(SERVICES)
    assert not set(hpas) & set(scaled), "an HPA and KEDA would fight over the replicas"
    for hpa in hpas.values():
        assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"


def test_keda_scales_each_consumer_on_its_own_group_and_topic() -> None:
    consumes = {"catalog": "objects", "detector": "videos"}
    for name, scaled in of_kind(rendered("prod"), "ScaledObject").items():
        (kafka,) = [t for t in scaled["spec"]["triggers"] if t["type"] == "kafka"]
        assert kafka["metadata"]["consumerGroup"] == name  # EventConsumer's group id
        topic = kafka["metadata"]["topic"]
        assert topic == consumes[name]
        # More consumers than partitions would idle: the registry caps the replicas.
        assert scaled["spec"]["maxReplicaCount"] <= TOPICS_BY_NAME[topic].partitions


def test_kafka_topics_are_generated_from_the_registry_and_fresh() -> None:
    result = run(sys.executable, str(ROOT / "tools/gen_k8s_topics.py"), "--check")
    assert result.returncode == 0, result.stdout + result.stderr
    topics = of_kind(rendered("prod"), "KafkaTopic")
    by_topic = {t["spec"]["topicName"]: t for t in topics.values()}
    assert set(by_topic) == {t.name for t in TOPICS}
    for topic in TOPICS:
        spec = by_topic[topic.name]["spec"]
        assert spec["partitions"] == topic.partitions, topic.name
        assert spec["config"]["cleanup.policy"] == topic.cleanup_policy, topic.name
        assert spec["config"]["retention.ms"] == str(topic.retention_ms), topic.name
        assert spec["replicas"] >= int(spec["config"]["min.insync.replicas"]) + 1, topic.name


def test_a_registry_change_makes_the_topic_check_fail(tmp_path: Path) -> None:
    """The freshness check is real: a committed KafkaTopic that disagrees is reported."""
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import gen_k8s_topics as gen
    finally:
        sys.path.remove(str(ROOT / "tools"))
    files = gen.generated_files()
    orders = gen.TOPICS_DIR / "orders.yaml"
    assert gen.stale_files(files) == []
    files[orders] = files[orders].replace("partitions: 4", "partitions: 8")
    assert gen.stale_files(files) == [orders.relative_to(ROOT).as_posix()]


def test_secrets_are_placeholders_and_prod_ships_none() -> None:
    for name, secret in of_kind(rendered("dev"), "Secret").items():
        for key, value in secret["stringData"].items():
            assert "REPLACE-ME" in value, f"{name}.{key} looks like a real secret"
    assert of_kind(rendered("prod"), "Secret") == {}
    for deployment in of_kind(rendered("prod"), "Deployment").values():
        env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert "secretKeyRef" in env["DATABASE_URL"]["valueFrom"]


def _settings_fields(service: str) -> set[str]:
    from vitrine_runtime.settings import ServiceSettings

    fields = set(ServiceSettings.model_fields)
    module = ROOT / f"services/{service}/src/vitrine_{service}/settings.py"
    if module.exists():
        import importlib

        settings = importlib.import_module(f"vitrine_{service}.settings")
        for value in vars(settings).values():
            if isinstance(value, type) and issubclass(value, ServiceSettings):
                fields |= set(value.model_fields)
    return {f.upper() for f in fields}


def test_config_maps_set_only_settings_the_services_read() -> None:
    docs = rendered("prod")
    configs = of_kind(docs, "ConfigMap")
    for name, deployment in of_kind(docs, "Deployment").items():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        keys = {e["name"] for e in container["env"] if e["name"] != "POD_NAME"}
        for source in container["envFrom"]:
            keys |= set(configs[source["configMapRef"]["name"]]["data"])
        unknown = keys - _settings_fields(name)
        assert not unknown, f"{name} is given settings it does not read: {sorted(unknown)}"


def test_network_policies_deny_by_default_and_open_only_what_each_needs() -> None:
    policies = of_kind(rendered("prod"), "NetworkPolicy")
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {}
    assert set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny
    assert "egress" not in deny

    def reaches(service: str) -> set[str]:
        targets = set()
        for rule in policies[service]["spec"]["egress"]:
            for peer in rule["to"]:
                labels = peer["podSelector"]["matchLabels"]
                targets.add(labels.get("app.kubernetes.io/name") or "kafka")
        return targets

    assert reaches("catalog") == {"kafka", "postgresql", "qdrant", "minio"}
    assert reaches("detector") == {"kafka", "postgresql", "minio"}
    for name in ("checkout", "commission", "live"):
        assert reaches(name) == {"kafka", "postgresql"}, name
    for name in SERVICES:
        (ingress,) = policies[name]["spec"]["ingress"]
        assert [p["port"] for p in ingress["ports"]] == ["http"], name


def test_service_monitor_scrapes_every_service() -> None:
    docs = rendered("prod")
    (monitor,) = of_kind(docs, "ServiceMonitor").values()
    wanted = monitor["spec"]["selector"]["matchLabels"]
    for name, service in of_kind(docs, "Service").items():
        labels = service["metadata"]["labels"]
        assert wanted.items() <= labels.items(), f"{name} is not scraped"
        assert [p["name"] for p in service["spec"]["ports"]] == [
            monitor["spec"]["endpoints"][0]["port"]
        ]


# --- compose ------------------------------------------------------------------------------


def test_compose_file_passes_the_compose_spec() -> None:
    result = run(
        tool("check-jsonschema"),
        "--builtin-schema",
        "vendor.compose-spec",
        str(ROOT / "docker-compose.yml"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_every_service_on_its_dockerfile_and_real_infrastructure() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in SERVICES:
        assert services[name]["build"]["dockerfile"] == f"services/{name}/Dockerfile"
        assert services[name]["read_only"] is True
    images = {s.get("image", "").split(":")[0] for s in services.values()}
    assert {"apache/kafka", "postgres", "qdrant/qdrant", "minio/minio"} <= images
    assert {"prom/prometheus", "grafana/grafana"} <= images
    assert services["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"
    for service in services.values():
        assert not service.get("image", "x:y").endswith(":latest")


def test_compose_prometheus_config_is_valid() -> None:
    result = run(tool("promtool"), "check", "config", "--syntax-only",
                 str(ROOT / "deploy/prometheus/prometheus.yml"))  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr


# --- Dockerfiles --------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICES)
def test_dockerfile_is_multi_stage_pinned_and_non_root(service: str) -> None:
    dockerfile = ROOT / f"services/{service}/Dockerfile"
    text = dockerfile.read_text()
    result = run(tool("hadolint"), "--failure-threshold", "warning", str(dockerfile))
    assert result.returncode == 0, result.stdout + result.stderr
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", text, re.MULTILINE | re.IGNORECASE)
    assert len(stages) >= 2, "multi-stage: build tools stay out of the runtime image"
    base = re.search(r"^ARG PYTHON_IMAGE=(\S+)", text, re.MULTILINE)
    assert base, "the base image is an ARG, pinned below"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-\w+", base.group(1)), "pinned base"
    users = re.findall(r"^USER\s+(\S+)", text, re.MULTILINE)
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "latest" not in text
    assert f'"-m", "vitrine_{service}"' in text
    # Every COPY from the context must exist, or the build fails where it matters.
    for source in re.findall(r"^COPY\s+(?!--from)(?:--\S+\s+)*(\S+)\s", text, re.MULTILINE):
        assert (ROOT / source).exists(), f"{service}: COPY {source} does not exist"


@pytest.mark.parametrize("service", ["catalog", "detector"])
def test_torch_images_take_the_cpu_wheel(service: str) -> None:
    text = (ROOT / f"services/{service}/Dockerfile").read_text()
    assert "download.pytorch.org/whl/cpu" in text


# --- rules, dashboard, runbooks -----------------------------------------------------------


def test_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = tool("promtool")
    check = run(promtool, "check", "rules", str(RULES))
    assert check.returncode == 0, check.stdout + check.stderr
    tests = run(
        promtool, "test", "rules", str(ROOT / "deploy/prometheus/tests/vitrine.rules.test.yml")
    )
    assert tests.returncode == 0, tests.stdout + tests.stderr


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if "alert" in rule]


def test_every_alert_has_a_runbook_section() -> None:
    headings = re.findall(r"^### (\S+)", RUNBOOK.read_text(), re.MULTILINE)
    for alert in _alerts():
        name = alert["alert"]
        assert name in headings, f"no '### {name}' section in docs/operations.md"
        assert alert["annotations"]["runbook_url"] == f"docs/operations.md#{name.lower()}"
    required = {
        "VitrineConsumerLagGrowing",
        "VitrineDeadLetters",
        "VitrineHttpErrorRatioHigh",
        "VitrineMatchingSlow",
        "VitrineOutboxBacklog",
        "VitrineLedgerImbalance",
    }
    assert required <= {a["alert"] for a in _alerts()}


_SUFFIXES = ("_bucket", "_count", "_sum", "_total", "_created")


def _exported_metric_names() -> set[str]:
    """Names the code registers (prometheus_client adds _total to counters itself)."""
    names = set()
    for source in [*ROOT.glob("libs/*/src/**/*.py"), *ROOT.glob("services/*/src/**/*.py")]:
        names |= set(re.findall(r"""["'](vitrine_[a-z0-9_]+)["']""", source.read_text()))
    return names


def _base_name(name: str) -> str:
    for suffix in _SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def _queried_metric_names(expr: str) -> set[str]:
    return {m for m in re.findall(r"\b(vitrine_[a-z0-9_]+)", expr)}


def test_dashboard_and_rules_query_only_metrics_the_code_exports() -> None:
    exported = {_base_name(n) for n in _exported_metric_names()}
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    groups = yaml.safe_load(RULES.read_text())["groups"]
    expressions += [rule["expr"] for group in groups for rule in group["rules"]]
    missing = {
        name
        for expr in expressions
        for name in _queried_metric_names(expr)
        if _base_name(name) not in exported
    }
    assert not missing, f"queried but exported by no service: {sorted(missing)}"


def test_dashboard_is_provisioned_and_covers_what_an_sre_needs() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    queried = " ".join(t["expr"] for p in dashboard["panels"] for t in p.get("targets", []))
    for needed in (
        "vitrine:http_requests:rate5m",
        "vitrine:http_server_errors:rate5m",
        "vitrine_http_request_duration_seconds_bucket",
        "vitrine_consumer_lag_messages",
        "vitrine_dead_letters_total",
        "vitrine_detector_",
        "vitrine_match_score_bucket",
        "vitrine_match_confidence_bucket",
        "vitrine:match_rate",
        "vitrine_orders_placed_total",
        "vitrine_gmv_minor_total",
        "vitrine_commission_accrued_minor_total",
        "vitrine_commission_reversed_minor_total",
        "vitrine_outbox_backlog_events",
        "vitrine_ledger_imbalance_minor",
    ):
        assert needed in queried, f"no panel shows {needed}"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/vitrine.yml").read_text()
    )
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./deploy/grafana/dashboards:{provider['providers'][0]['options']['path']}:ro" in mounts
