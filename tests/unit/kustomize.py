"""What `kubectl apply -k` would send, for the subset of kustomize deploy/k8s uses (neither
kustomize nor helm can be installed where the tests run): resources (files, or folders with a
kustomization.yaml), common labels (on pod templates too with includeTemplates), and image
overrides. Anything else in a kustomization is
an error here, so a manifest never relies on a feature these tests do not render."""

from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "labels", "images"}


def render(folder: Path) -> list[dict[str, Any]]:
    """The documents the kustomization in folder produces."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - SUPPORTED
    if unsupported:
        raise ValueError(f"{folder}: kustomize fields not rendered here: {sorted(unsupported)}")
    documents: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = folder / resource
        if path.is_dir():
            documents += render(path)
        else:
            documents += [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    for entry in kustomization.get("labels", []):
        for document in documents:
            document.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
            template = document.get("spec", {}).get("template")
            if entry.get("includeTemplates") and template is not None:
                template.setdefault("metadata", {}).setdefault("labels", {}).update(entry["pairs"])
    for image in kustomization.get("images", []):
        for container in containers(documents):
            if container["image"].split(":")[0] == image["name"]:
                container["image"] = f"{image['newName']}:{image['newTag']}"
    return documents


def pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    """The pod template's spec of a workload (Deployment, StatefulSet, Job)."""
    template = document.get("spec", {}).get("template")
    return template["spec"] if template else None


def containers(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for document in documents:
        spec = pod_spec(document)
        if spec is not None:
            found += spec.get("initContainers", []) + spec["containers"]
    return found
