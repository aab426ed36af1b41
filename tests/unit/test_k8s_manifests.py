"""deploy/k8s, rendered as `kubectl apply -k` would: valid Kubernetes objects (checked against
Kubernetes' own schemas by kubernetes-validate), valid KEDA objects (tests.unit.keda_schema),
and the promises the manifests make: a worker Deployment and ScaledObject per stage queue,
grace periods and scale-down windows no shorter than the queue's jobs, the commands the local
runner starts, health probes on the gateway, secrets from the one Secret, no shared volume,
MLflow behind its login, every pod unprivileged and bounded, only the stack's pods reaching
Redis, PostgreSQL and MLflow."""

import copy
import shlex
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest

from services.stack import processes
from shared.pipeline import STAGES
from shared.queues import MONITOR_QUEUE, MONITOR_TASKS, QUEUES, monitor_interval
from shared.settings import MLFLOW_USERNAME, PROJECT_DIR, Settings
from tests.unit.keda_schema import SCHEMAS
from tests.unit.kustomize import containers, pod_spec, render

K8S = PROJECT_DIR / "deploy" / "k8s"
OVERLAYS = sorted(path.parent for path in (K8S / "overlays").glob("*/kustomization.yaml"))
VERSIONS = ("1.29.0", "1.37.0")  # the oldest Kubernetes still commonly run, and the newest
SECRET = "price-category-secrets"
SECRET_KEYS = {"REDIS_PASSWORD", "POSTGRES_PASSWORD", "RETRAIN_TOKEN", "DASHBOARD_USER",
               "DASHBOARD_PASSWORD", "MLFLOW_TRACKING_PASSWORD"}  # fmt: skip
IMAGE = "price-category:latest"


def rendered(overlay: Path) -> list[dict]:
    return render(overlay)


def named(documents: list[dict], kind: str, name: str) -> dict:
    found = [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(found) == 1, (kind, name, len(found))
    return found[0]


def longest_job(queue: str) -> int:
    """Seconds the longest job of a queue may run (its RQ job timeout)."""
    if queue == MONITOR_QUEUE:
        settings = Settings()
        return max(max(monitor_interval(settings, task), 60) for task in MONITOR_TASKS)
    return max(stage.timeout for stage in STAGES if stage.queue == queue)


def test_there_are_overlays_for_in_cluster_and_external_services():
    assert [path.name for path in OVERLAYS] == ["external", "in-cluster"]


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_every_object_is_valid_against_the_kubernetes_or_keda_schema(overlay, version):
    for document in rendered(overlay):
        if document["kind"] in SCHEMAS:
            jsonschema.validate(document, SCHEMAS[document["kind"]])
            behavior = document["spec"].get("advanced", {})
            behavior = behavior.get("horizontalPodAutoscalerConfig", {}).get("behavior")
            if behavior:  # KEDA hands it to the HPA it makes: it must be the HPA's
                hpa = {
                    "apiVersion": "autoscaling/v2",
                    "kind": "HorizontalPodAutoscaler",
                    "metadata": {"name": "check"},
                    "spec": {
                        "scaleTargetRef": {"kind": "Deployment", "name": "x"},
                        "maxReplicas": 1,
                        "behavior": behavior,
                    },
                }
                kubernetes_validate.validate(hpa, version, strict=True)
        else:
            kubernetes_validate.validate(document, version, strict=True)


def test_the_keda_schema_catches_what_a_user_would_get_wrong():
    scaled = named(rendered(OVERLAYS[0]), "ScaledObject", "worker-train")
    for break_it in (
        lambda s: s["spec"]["triggers"][0]["metadata"].pop("listName"),
        lambda s: s["spec"]["triggers"][0]["metadata"].update(listLength=1),  # not a string
        lambda s: s["spec"].update(minReplicas=1),  # the HPA's word, not KEDA's
        lambda s: s["spec"]["scaleTargetRef"].pop("name"),
    ):
        broken = copy.deepcopy(scaled)
        break_it(broken)
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(broken, SCHEMAS["ScaledObject"])


@pytest.mark.parametrize("queue", QUEUES)
def test_each_stage_queue_has_workers_scaled_on_its_rq_list(queue):
    documents = rendered(OVERLAYS[0])
    deployment = named(documents, "Deployment", f"worker-{queue}")
    scaled = named(documents, "ScaledObject", f"worker-{queue}")
    assert scaled["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis"
    assert trigger["metadata"]["listName"] == f"rq:queue:{queue}"  # RQ's key for the queue
    assert trigger["metadata"]["address"] == "redis:6379"
    auth = named(documents, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "password", "name": SECRET, "key": "REDIS_PASSWORD"}
    ]
    # A running job has left the list: never scale to zero under it, and scale down only
    # after a quiet spell as long as the queue's longest job.
    assert scaled["spec"]["minReplicaCount"] >= 1
    window = scaled["spec"]["advanced"]["horizontalPodAutoscalerConfig"]["behavior"]
    assert window["scaleDown"]["stabilizationWindowSeconds"] >= longest_job(queue)
    assert "replicas" not in deployment["spec"]  # KEDA owns the count; apply must not reset it


@pytest.mark.parametrize("queue", [*QUEUES, MONITOR_QUEUE])
def test_a_stopping_worker_may_finish_its_longest_job_with_the_runner_s_command(queue):
    documents = rendered(OVERLAYS[0])
    kind = "StatefulSet" if queue == MONITOR_QUEUE else "Deployment"
    spec = pod_spec(named(documents, kind, f"worker-{queue}"))
    assert spec["terminationGracePeriodSeconds"] >= longest_job(queue)
    [container] = spec["containers"]
    local = processes.worker_command(queue)
    assert container["command"] == [Path(local[0]).name, *local[1:]]


def test_the_gateway_is_probed_autoscaled_and_started_as_the_runner_starts_it():
    documents = rendered(OVERLAYS[0])
    [container] = pod_spec(named(documents, "Deployment", "gateway"))["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    local = processes.gateway_command("0.0.0.0:8000", workers=2)
    assert container["command"] == [Path(local[0]).name, *local[1:]]
    hpa = named(documents, "HorizontalPodAutoscaler", "gateway")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "gateway",
    }
    assert hpa["spec"]["minReplicas"] >= 2  # one pod restarting never stops predictions


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_secrets_come_from_the_one_secret_and_no_volume_is_shared(overlay):
    documents = rendered(overlay)
    for container in containers(documents):
        for variable in container.get("env", []):
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference:
                assert reference["name"] == SECRET and reference["key"] in SECRET_KEYS
            else:
                assert "PASSWORD" not in variable["name"] and "TOKEN" not in variable["name"]
    claims: list[str] = []
    for document in documents:
        spec = pod_spec(document)
        if spec is None:
            continue
        assert not any("hostPath" in volume for volume in spec.get("volumes", []))
        assert not any("persistentVolumeClaim" in volume for volume in spec.get("volumes", [])), (
            document["metadata"]["name"]
        )  # claims only as a StatefulSet's own, per pod
        for template in document["spec"].get("volumeClaimTemplates", []):
            assert template["spec"]["accessModes"] == ["ReadWriteOnce"]
            claims.append(f"{document['metadata']['name']}/{template['metadata']['name']}")
        if document["kind"] == "Deployment":  # scratch space of its own pod only
            volumes = spec.get("volumes", [])
            assert all(set(v) == {"name", "emptyDir"} for v in volumes), document["metadata"]
    assert len(claims) == len(set(claims))


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_the_application_finds_redis_and_mlflow_by_their_service_names(overlay):
    documents = rendered(overlay)
    named(documents, "Service", "redis")
    named(documents, "Service", "mlflow")
    config = named(documents, "ConfigMap", "price-category-config")["data"]
    assert config["REDIS_HOST"] == "redis"
    assert config["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    images = {c["image"] for c in containers(documents)}
    assert IMAGE in images and all(":" in image for image in images)


def workloads(documents: list[dict]) -> list[tuple[str, dict]]:
    return [(d["metadata"]["name"], spec) for d in documents if (spec := pod_spec(d)) is not None]


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_every_pod_runs_unprivileged_read_only_and_bounded(overlay):
    for name, spec in workloads(rendered(overlay)):
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, name
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert container["resources"]["limits"]["memory"], name
            assert container["resources"]["requests"]["cpu"], name
            mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
            if container["image"].startswith("price-category"):
                assert "/tmp" in mounts, name  # where Python's libraries write scratch


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda path: path.name)
def test_every_mlflow_client_and_the_server_have_the_stack_s_login(overlay):
    documents = rendered(overlay)
    config = named(documents, "ConfigMap", "price-category-config")["data"]
    assert config["MLFLOW_TRACKING_USERNAME"] == MLFLOW_USERNAME
    for name, spec in workloads(documents):
        for container in spec["containers"]:
            if not container["image"].startswith("price-category"):
                continue
            secrets = {
                variable["name"]: variable["valueFrom"]["secretKeyRef"]["key"]
                for variable in container.get("env", [])
                if "secretKeyRef" in variable.get("valueFrom", {})
            }
            reads_config = any("configMapRef" in source for source in container.get("envFrom", []))
            if reads_config or name == "mlflow":
                assert secrets.get("MLFLOW_TRACKING_PASSWORD") == "MLFLOW_TRACKING_PASSWORD", name
    if any(d["kind"] == "StatefulSet" and d["metadata"]["name"] == "mlflow" for d in documents):
        [server] = pod_spec(named(documents, "StatefulSet", "mlflow"))["containers"]
        local = processes.mlflow_command(5000, "/mlartifacts", "0.0.0.0")
        expected = [Path(local[0]).name, *local[1:]]  # behind its login, as the runner starts it
        hosts = expected.index("--allowed-hosts") + 1
        expected[hosts] = server["command"][hosts]  # the Service's names besides loopback
        assert server["command"] == expected


def test_the_in_cluster_redis_runs_as_the_local_runner_starts_it_bounded_never_evicting():
    documents = rendered(K8S / "overlays" / "in-cluster")
    (redis,) = containers([named(documents, "StatefulSet", "redis")])
    runner = shlex.join(processes.redis_command(6379, "/data", host="0.0.0.0"))
    assert "--maxmemory-policy noeviction" in runner
    assert redis["command"][2].endswith(f"exec {runner}")


def test_only_the_stack_s_pods_reach_redis_postgres_and_mlflow():
    documents = rendered(K8S / "overlays" / "in-cluster")
    policies = {d["metadata"]["name"]: d["spec"] for d in documents if d["kind"] == "NetworkPolicy"}
    assert set(policies) == {"redis", "postgres", "mlflow"}
    labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in documents
        if pod_spec(d) is not None
    }
    part_of = {"app.kubernetes.io/part-of": "price-category"}
    assert all(part_of.items() <= pod.items() for pod in labels.values()), labels
    for server, port in (("redis", 6379), ("mlflow", 5000), ("postgres", 5432)):
        policy = policies[server]
        assert policy["podSelector"]["matchLabels"] == {"app.kubernetes.io/component": server}
        assert policy["policyTypes"] == ["Ingress"]
        [rule] = policy["ingress"]
        assert rule["ports"] == [{"port": port}]
        sources = rule["from"]
        if server == "postgres":  # MLflow and its schema job alone
            [source] = sources
            [expression] = source["podSelector"]["matchExpressions"]
            assert expression["values"] == ["mlflow", "mlflow-migrate"]
            components = {pod.get("app.kubernetes.io/component") for pod in labels.values()}
            assert {"mlflow", "mlflow-migrate"} <= components
        else:
            assert {"podSelector": {"matchLabels": part_of}} in sources
            others = [s for s in sources if s != {"podSelector": {"matchLabels": part_of}}]
            # Redis also answers KEDA's operator, which reads the queues' lengths.
            assert others == ([{"namespaceSelector": {"matchLabels": {
                "kubernetes.io/metadata.name": "keda"}}}] if server == "redis" else [])  # fmt: skip
