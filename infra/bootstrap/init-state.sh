#!/usr/bin/env bash
# Initialise a new S3 state backend once, with the bootstrap's administrator credentials. The first
# `pulumi login` to an empty bucket writes .pulumi/meta.yaml (the state layout's version), which the
# read-only preview role may not write, so a pull request's first preview would fail at login; every
# later login only reads it. A scratch PULUMI_HOME leaves your own `pulumi login` as it was.
set -euo pipefail
url=${1:?usage: init-state.sh s3://bucket?region=…}
home=$(mktemp -d)
trap 'rm -rf "$home"' EXIT
PULUMI_HOME=$home pulumi login "$url" > /dev/null
echo "state backend $url: initialised, so pull-request previews can log in with the read-only role"
