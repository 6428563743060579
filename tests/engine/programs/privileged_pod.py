"""A Deployment that breaks the restricted profile, for the policy pack to refuse through the engine."""

import pulumi_kubernetes as k8s

k8s.apps.v1.Deployment(
    "privileged",
    spec={
        "selector": {"matchLabels": {"app": "privileged"}},
        "template": {
            "metadata": {"labels": {"app": "privileged"}},
            "spec": {
                "containers": [
                    {
                        "name": "root",
                        "image": "registry.example/anything@sha256:" + "ab" * 32,
                        "securityContext": {"privileged": True},
                    }
                ]
            },
        },
    },
)
