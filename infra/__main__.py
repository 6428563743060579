"""The Pulumi program's entry (Pulumi.yaml's `main: infra/`). Where things are:

- program/: the stack — typed settings (and the schema they generate), the SLO, one component per
  runtime, the endpoints;
- offline/: the plan without the cloud (`make plan`, `make plan-diff`): Pulumi's mocks, the rendered
  files, the terraform-style view;
- delivery/: what a deploy job runs — the rollout (steps, smoke tests, bakes, rollback, abort), the
  analysis, where each runtime is reached;
- engine.py: the one engine runner (preview, up, destroy) every script and job goes through.
"""

from program.stack import main

main()
