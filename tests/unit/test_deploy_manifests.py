"""deploy/: the image definition, the compose stack and the Kubernetes manifests say what the
code needs (kubectl and docker are not available here, so these are the honest checks):
every manifest parses; every command is a real entrypoint; every Deployment has probes,
requests and limits and a PodDisruptionBudget; every consumer service has an autoscaler that
stays within the partition count; production producer and topic settings are on."""

import importlib.util
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from deploy.check import SERVICES, CheckSettings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
SCHEMA_SERVICES = [s.name for s in SERVICES if s.main is not None]
CONSUMER_SERVICES = [s.name for s in SERVICES if s.consumer_groups]


def k8s_documents() -> list[dict[str, Any]]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def of_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in k8s_documents() if d["kind"] == kind]


def runnable(module: str) -> bool:
    """`python -m module` works: a module, or a package with a __main__."""
    spec = importlib.util.find_spec(module)
    if spec is None:
        return False
    if spec.submodule_search_locations is not None:
        return importlib.util.find_spec(f"{module}.__main__") is not None
    return True


def pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return deployment["spec"]["template"]["metadata"]["labels"]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def env_of(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "<from secret>") for e in container.get("env", [])}


def config_map() -> dict[str, str]:
    (config,) = [d for d in of_kind("ConfigMap") if d["metadata"]["name"] == "fieldcollect-config"]
    return config["data"]


def compose() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def test_the_deployment_knows_every_consumer_group_the_services_declare() -> None:
    """Each group gets a dead-letter topic from the topic job; a group missing from
    deploy.check.SERVICES would publish its dead letters to a topic that does not exist."""
    declared = {
        (path.relative_to(ROOT / "services").parts[0], group)
        for path in (ROOT / "services").rglob("*.py")
        for group in re.findall(r"group_id=\"([^\"]+)\"", path.read_text())
    }
    known = {(s.name, g) for s in SERVICES for g in s.consumer_groups}
    assert declared == known


# --- everything parses -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    sorted(
        [
            *K8S.glob("*.yaml"),
            DEPLOY / "compose.yaml",
            *(DEPLOY / "prometheus").glob("*.y*ml"),
            *(DEPLOY / "grafana" / "provisioning").rglob("*.yaml"),
        ]
    ),
    ids=lambda p: str(p.relative_to(DEPLOY)),
)
def test_every_manifest_parses(path: Path) -> None:
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert docs and all(isinstance(d, dict) for d in docs)


def test_kustomization_lists_every_manifest() -> None:
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(kustomization["resources"]) == files
    assert all(d["metadata"].get("namespace", "fieldcollect") == "fieldcollect" for d in k8s_documents())


# --- Kubernetes: Deployments ------------------------------------------------------------


def test_every_service_runs_as_a_deployment_of_a_real_entrypoint() -> None:
    deployments = of_kind("Deployment")
    modules = {d["spec"]["template"]["spec"]["containers"][0]["args"][0] for d in deployments}
    assert modules == {f"services.{s.name}" for s in SERVICES}
    assert all(runnable(m) for m in modules)


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_deployments_have_probes_resources_and_a_locked_down_pod(deployment: dict[str, Any]) -> None:
    spec = deployment["spec"]
    assert selects(spec["selector"]["matchLabels"], pod_labels(deployment))
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "http"}
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz"
    for kind in ("requests", "limits"):
        assert set(container["resources"][kind]) == {"cpu", "memory"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"], "read-only root needs /tmp"
    assert pod["terminationGracePeriodSeconds"] > 30, "uvicorn drains for 30 s, then consumers commit"
    assert container["envFrom"] == [{"configMapRef": {"name": "fieldcollect-config"}}]
    assert env_of(container)["DATABASE_URL"] == "<from secret>"


def test_the_followup_deployment_gets_the_sms_provider_from_a_secret() -> None:
    (followup,) = [d for d in of_kind("Deployment") if d["metadata"]["name"] == "followup"]
    env = env_of(followup["spec"]["template"]["spec"]["containers"][0])
    assert env["SMS_PROVIDER_API_KEY"] == env["SMS_PROVIDER_URL"] == "<from secret>"


def test_every_service_is_reachable_through_a_service_on_its_http_port() -> None:
    deployments = of_kind("Deployment")
    for service in of_kind("Service"):
        matched = [d for d in deployments if selects(service["spec"]["selector"], pod_labels(d))]
        assert matched, service["metadata"]["name"]
        assert service["spec"]["ports"][0]["targetPort"] == "http"
    served = {s["metadata"]["name"] for s in of_kind("Service")}
    assert served == {s.name for s in SERVICES}


# --- Kubernetes: autoscaling and disruption ---------------------------------------------


def consumer_deployments() -> list[dict[str, Any]]:
    """Deployments whose pods join consumer groups (RUN_CONSUMERS not turned off)."""
    found = []
    for d in of_kind("Deployment"):
        container = d["spec"]["template"]["spec"]["containers"][0]
        service = container["args"][0].removeprefix("services.")
        if service in CONSUMER_SERVICES and env_of(container).get("RUN_CONSUMERS", "true") != "false":
            found.append(d)
    return found


def test_every_consumer_service_has_an_autoscaler_within_the_partition_count() -> None:
    partitions = int(config_map()["KAFKA_PARTITIONS"])
    autoscalers = {h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind("HorizontalPodAutoscaler")}
    consumers = consumer_deployments()
    scaled_services = {
        d["spec"]["template"]["spec"]["containers"][0]["args"][0].removeprefix("services.") for d in consumers
    }
    assert scaled_services == set(CONSUMER_SERVICES)
    for deployment in consumers:
        hpa = autoscalers[deployment["metadata"]["name"]]["spec"]
        assert hpa["scaleTargetRef"]["kind"] == "Deployment"
        assert 2 <= hpa["minReplicas"] <= hpa["maxReplicas"] <= partitions, (
            "more members than partitions idle"
        )
        assert hpa["metrics"], "scales on something"
        scale_down = hpa["behavior"]["scaleDown"]
        assert scale_down["stabilizationWindowSeconds"] >= 300, "every membership change is a rebalance"
    for name in autoscalers:
        assert name in {d["metadata"]["name"] for d in of_kind("Deployment")}


@pytest.mark.parametrize("deployment", of_kind("Deployment"), ids=lambda d: d["metadata"]["name"])
def test_every_deployment_has_a_disruption_budget(deployment: dict[str, Any]) -> None:
    budgets = [
        b
        for b in of_kind("PodDisruptionBudget")
        if selects(b["spec"]["selector"]["matchLabels"], pod_labels(deployment))
    ]
    assert len(budgets) == 1
    assert budgets[0]["spec"].get("maxUnavailable") == 1
    others = [d for d in of_kind("Deployment") if d["metadata"]["name"] != deployment["metadata"]["name"]]
    assert not any(selects(budgets[0]["spec"]["selector"]["matchLabels"], pod_labels(d)) for d in others)


# --- Kubernetes: jobs and configuration -------------------------------------------------


def job(name: str) -> dict[str, Any]:
    (found,) = [j for j in of_kind("Job") if j["metadata"]["name"] == name]
    return found["spec"]["template"]["spec"]


def test_the_topic_job_creates_topics_and_the_migrations_job_migrates_every_schema() -> None:
    topics = job("fieldcollect-topics")["containers"][0]["args"]
    assert topics[:2] == ["deploy.check", "--create-topics"]
    migrations = job("fieldcollect-migrations")
    assert [c["args"] for c in migrations["initContainers"]] == [
        [f"services.{name}", "migrate"] for name in SCHEMA_SERVICES
    ]
    assert migrations["containers"][0]["args"][:2] == ["deploy.check", "--production"]
    assert all(runnable(c["args"][0]) for c in [*migrations["initContainers"], *migrations["containers"]])
    assert runnable(topics[0])


def test_the_config_map_has_production_producer_and_topic_settings(monkeypatch) -> None:
    data = config_map()
    assert data["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert int(data["KAFKA_REPLICATION_FACTOR"]) >= 3
    assert 2 <= int(data["KAFKA_MIN_INSYNC_REPLICAS"]) < int(data["KAFKA_REPLICATION_FACTOR"])
    assert data["JWT_ISSUER"] != "fieldcollect-dev"
    for name, value in data.items():
        monkeypatch.setenv(name, value)
    settings = CheckSettings()
    assert settings.kafka_partitions == int(data["KAFKA_PARTITIONS"])
    assert settings.kafka_enable_idempotence is True
    assert settings.http_host == "0.0.0.0"


# --- compose ---------------------------------------------------------------------------


def test_compose_runs_a_three_broker_kraft_cluster_with_replication_3_and_min_isr_2() -> None:
    services = compose()["services"]
    brokers = {n: s for n, s in services.items() if s.get("image", "").startswith("apache/kafka:")}
    assert len(brokers) == 3
    ids = {str(s["environment"]["KAFKA_NODE_ID"]) for s in brokers.values()}
    assert ids == {"1", "2", "3"}
    for broker in brokers.values():
        env = broker["environment"]
        assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
        assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == ",".join(f"{i}@kafka-{i}:9093" for i in (1, 2, 3))
        assert int(env["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == 3
        assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]) == 2
        assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 3
        assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
        assert any(v.endswith(":/var/lib/kafka/data") for v in broker["volumes"])


def test_compose_starts_every_service_after_topics_migrations_and_the_preflight_check() -> None:
    services = compose()["services"]
    app_env = services["intake"]["environment"]
    assert app_env["KAFKA_ENABLE_IDEMPOTENCE"] == "true"
    assert app_env["KAFKA_REPLICATION_FACTOR"] == "3" and app_env["KAFKA_MIN_INSYNC_REPLICAS"] == "2"
    for entry in SERVICES:
        service = services[entry.name]
        assert service["command"] == [f"services.{entry.name}"]
        assert service["depends_on"]["preflight"]["condition"] == "service_completed_successfully"
        assert "/readyz" in " ".join(service["healthcheck"]["test"])
    assert services["kafka-topics"]["command"][:2] == ["deploy.check", "--create-topics"]
    assert services["preflight"]["command"] == ["deploy.check"]
    assert set(services["preflight"]["depends_on"]) == {"kafka-topics", "migrate"}
    loop = services["migrate"]["command"][0]
    assert re.search(r"for s in ([a-z ]+); do python -m services\.\$\$s migrate", loop).group(1).split() == (
        SCHEMA_SERVICES
    )
    assert services["sms-sandbox"]["command"] == ["services.followup.sms_sandbox"]
    app_image = services["intake"]["image"]
    for name, service in services.items():
        if service.get("image") == app_image and "entrypoint" not in service:
            assert runnable(service["command"][0]), name
    assert services["migrate"]["entrypoint"] == ["sh", "-c"]


def test_compose_wires_prometheus_and_grafana_to_the_checked_in_rules_and_dashboards() -> None:
    services = compose()["services"]
    prometheus = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    targets = {t for job in prometheus["scrape_configs"] for c in job["static_configs"] for t in c["targets"]}
    assert targets == {f"{s.name}:8080" for s in SERVICES}
    mount = next(v for v in services["prometheus"]["volumes"] if v.startswith("./prometheus:"))
    in_container = mount.split(":")[1]
    for pattern in prometheus["rule_files"]:
        assert pattern.startswith(in_container)
        assert list((DEPLOY / "prometheus").glob(pattern.removeprefix(in_container + "/"))), pattern
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/fieldcollect.yaml").read_text())
    dashboards_path = provider["providers"][0]["options"]["path"]
    assert f"./grafana:{dashboards_path}:ro" in services["grafana"]["volumes"]
    assert list((DEPLOY / "grafana").glob("*.json")), "at least one dashboard to provision"


# --- the image -------------------------------------------------------------------------


def test_the_dockerfile_is_multi_stage_locked_non_root_and_runs_the_real_entrypoints() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert len(re.findall(r"^FROM ", text, re.M)) >= 3
    assert re.search(r"uv sync --frozen --no-dev", text)
    makefile_uv = re.search(r"^UV_VERSION := (\S+)", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"ghcr.io/astral-sh/uv:{makefile_uv}" in text, "the image uses the Makefile's uv"
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    python = re.search(r"python:(\d+\.\d+)-slim", text).group(1)
    assert f">={python}" in requires
    user = re.search(r"^USER (\S+)", text, re.M).group(1)
    assert user.split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["python", "-m"]' in text
    cmd = re.search(r'^CMD \["([^"]+)"\]', text, re.M).group(1)
    assert runnable(cmd)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", text, re.M):
        for path in source.split():
            assert (ROOT / path).exists(), path
    assert "HTTP_HOST=0.0.0.0" in text and "HTTP_PORT=8080" in text
