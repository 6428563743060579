#!/usr/bin/env bash
# The image's platform manifests by digest, as step outputs. Kubernetes runs the multi-platform
# index (IMAGE) and each node pulls its own architecture; Lambda refuses an index, so a Lambda image
# function runs its architecture's manifest. The attestations (provenance, SBOM) stay in the index.
set -euo pipefail
docker buildx imagetools inspect --raw "$IMAGE" | python3 -c '
import json, sys

image = sys.argv[1]
index = json.load(sys.stdin)
if "manifests" not in index:
    sys.exit(f"{image} is one manifest, not a multi-platform index: build it with PLATFORMS")
found = {}
for manifest in index["manifests"]:
    platform = manifest.get("platform", {})  # attestations say unknown/unknown
    arch = {"arm64": "arm64", "amd64": "x86_64"}.get(platform.get("architecture", ""))
    if platform.get("os") == "linux" and arch:
        found[arch] = image.split("@")[0] + "@" + manifest["digest"]
missing = sorted({"arm64", "x86_64"} - found.keys())
if missing:
    sys.exit(f"{image} has no linux manifest for {missing}: Lambda could not run it there")
for arch, reference in sorted(found.items()):
    print(f"lambda_image_{arch}={reference}")
' "$IMAGE"
