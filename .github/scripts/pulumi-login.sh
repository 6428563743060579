#!/usr/bin/env bash
# Log the CLI in: to PULUMI_BACKEND_URL (s3://…, file://…) when set, else to Pulumi Cloud with
# PULUMI_ACCESS_TOKEN. The CLI (pulumi-cli.sh) starts logged out on a fresh runner.
set -euo pipefail
pulumi login ${PULUMI_BACKEND_URL:+"$PULUMI_BACKEND_URL"}
