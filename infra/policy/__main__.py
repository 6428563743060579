"""The policy pack: `pulumi preview --policy-pack infra/policy` (and every workflow's preview and up)."""

from pulumi_policy import PolicyPack
from rules import POLICIES

PolicyPack(name="twinserve", policies=POLICIES)
