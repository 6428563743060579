"""Builds the data plane from settings: locate the artifact, read its spec, load and warm the runtime."""

from __future__ import annotations

from serving.allocator import keep_request_buffers
from serving.artifact import locate, read_spec
from serving.dataplane import DataPlane
from serving.runtime import load_runtime
from serving.settings import Settings


def build_dataplane(settings: Settings) -> DataPlane:
    keep_request_buffers()  # both adapters build here, once per process
    path = locate(settings.model_root, settings.model_name or None, settings.model_version)
    spec = read_spec(path)
    runtime = load_runtime(settings.runtime, spec, settings.threads)
    return DataPlane(spec=spec, runtime=runtime, max_batch_rows=settings.max_batch_rows)
