#!/usr/bin/env bash
# Docker login to the ECR registry with the job's short-lived OIDC credentials.
set -euo pipefail
registry=${ECR_REPOSITORY_URL%%/*}
aws ecr get-login-password --region "$AWS_REGION" | docker login --username AWS --password-stdin "$registry"
