"""An InferenceService CRD whose schema is generated from the kserve SDK's own models.

The kserve wheel ships no CRD manifest, only the OpenAPI-generated model classes; their
``openapi_types`` / ``attribute_map`` give every field's JSON name and type, recursively
(kubernetes core types from the kubernetes client). The schema is cut at ``max_depth``
(deeper objects keep unknown fields), and carries no ``default: ""`` (Kubernetes 1.20
rejects it). For tests against a real API server: what the API server checks is then what
the SDK can express; the InferenceGraph CRD (``v1alpha1``) is generated the same way. The
Istio VirtualService CRD is a hand-written subset of Istio's ``networking.istio.io/v1``
schema: the fields kserve_push writes (routes with weights, mirrors, names and header
matches).
"""

from __future__ import annotations

from typing import Any

from kfpkit.components.kserve_push.isvc import DICT_TYPE, LIST_TYPE, model_class

_PRIMITIVES = {
    "str": {"type": "string"},
    "int": {"type": "integer"},
    "float": {"type": "number"},
    "bool": {"type": "boolean"},
    "datetime": {"type": "string", "format": "date-time"},
    "date": {"type": "string", "format": "date"},
}
# Knative types the SDK models as objects but that go over the wire as strings (Go's
# apis.URL and apis.VolatileTime marshal to text; KServe's own CRD types them so).
_STRING_TYPES = {"KnativeURL", "KnativeVolatileTime"}
# Kubernetes quantities and int-or-string fields are typed str in the SDKs.
_INT_OR_STRING = {"x-kubernetes-int-or-string": True}


def schema_of(type_name: str, depth: int, max_depth: int) -> dict[str, Any]:
    if type_name in _PRIMITIVES:
        return dict(_PRIMITIVES[type_name])
    if type_name in _STRING_TYPES:
        return {"type": "string"}
    if type_name == "object":
        return {"x-kubernetes-preserve-unknown-fields": True}
    m = LIST_TYPE.match(type_name)
    if m:
        return {"type": "array", "items": schema_of(m.group(1), depth, max_depth)}
    m = DICT_TYPE.match(type_name)
    if m:
        inner = m.group(2)
        values = _INT_OR_STRING if inner == "str" else schema_of(inner, depth, max_depth)
        return {"type": "object", "additionalProperties": values}
    klass = model_class(type_name)
    if klass is None or depth >= max_depth:
        return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    properties = {
        klass.attribute_map[attr]: schema_of(kind, depth + 1, max_depth)
        for attr, kind in sorted(klass.openapi_types.items())
    }
    return {"type": "object", "properties": properties}


def inference_service_crd(max_depth: int = 6) -> dict[str, Any]:
    from kserve.models import V1beta1InferenceService

    properties = {
        name: schema_of(kind, 1, max_depth)
        for name, kind in V1beta1InferenceService.openapi_types.items()
        if name in ("spec", "status")
    }
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            **{V1beta1InferenceService.attribute_map[k]: v for k, v in properties.items()},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "inferenceservices.serving.kserve.io"},
        "spec": {
            "group": "serving.kserve.io",
            "names": {"kind": "InferenceService", "listKind": "InferenceServiceList",
                      "plural": "inferenceservices", "singular": "inferenceservice",
                      "shortNames": ["isvc"]},
            "scope": "Namespaced",
            "versions": [{"name": "v1beta1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema},
                          "subresources": {"status": {}}}],
        },
    }  # fmt: skip


def inference_graph_crd(max_depth: int = 6) -> dict[str, Any]:
    from kserve.models import V1alpha1InferenceGraph

    properties = {
        V1alpha1InferenceGraph.attribute_map[name]: schema_of(kind, 1, max_depth)
        for name, kind in V1alpha1InferenceGraph.openapi_types.items()
        if name in ("spec", "status")
    }
    schema = {
        "type": "object",
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                       "metadata": {"type": "object"}, **properties},
    }  # fmt: skip
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "inferencegraphs.serving.kserve.io"},
        "spec": {
            "group": "serving.kserve.io",
            "names": {"kind": "InferenceGraph", "listKind": "InferenceGraphList",
                      "plural": "inferencegraphs", "singular": "inferencegraph",
                      "shortNames": ["ig"]},
            "scope": "Namespaced",
            "versions": [{"name": "v1alpha1", "served": True, "storage": True,
                          "schema": {"openAPIV3Schema": schema},
                          "subresources": {"status": {}}}],
        },
    }  # fmt: skip


def virtual_service_crd() -> dict[str, Any]:
    destination = {
        "type": "object",
        "properties": {"host": {"type": "string"}, "subset": {"type": "string"},
                       "port": {"type": "object", "properties": {"number": {"type": "integer"}}}},
        "required": ["host"],
    }  # fmt: skip
    string_match = {"type": "object", "properties": {
        k: {"type": "string"} for k in ("exact", "prefix", "regex")}}  # fmt: skip
    http_route = {
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "match": {"type": "array", "items": {"type": "object", "properties": {
                "headers": {"type": "object", "additionalProperties": string_match}}}},
            "route": {"type": "array", "items": {
                "type": "object", "required": ["destination"],
                "properties": {"destination": destination, "weight": {"type": "integer"}}}},
            "mirror": destination,
            "mirrorPercentage": {"type": "object", "properties": {"value": {"type": "number"}}},
        },
    }  # fmt: skip
    spec = {
        "type": "object",
        "properties": {
            "hosts": {"type": "array", "items": {"type": "string"}},
            "gateways": {"type": "array", "items": {"type": "string"}},
            "http": {"type": "array", "items": http_route},
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "virtualservices.networking.istio.io"},
        "spec": {
            "group": "networking.istio.io",
            "names": {"kind": "VirtualService", "listKind": "VirtualServiceList",
                      "plural": "virtualservices", "singular": "virtualservice",
                      "shortNames": ["vs"]},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True, "schema": {
                "openAPIV3Schema": {"type": "object", "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"},
                    "metadata": {"type": "object"}, "spec": spec,
                    "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}}},
                "subresources": {"status": {}}}],
        },
    }  # fmt: skip
