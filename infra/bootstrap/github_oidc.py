"""Print the ARN of the account's OIDC identity provider for GitHub Actions, or nothing if it has none.

AWS allows one provider per URL in an account, so a bootstrap in an account that already trusts
GitHub Actions must use that one. Run with the bootstrap's credentials, by `bootstrap.sh`.
"""

from __future__ import annotations

import sys
from typing import Any

GITHUB_OIDC = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"


def existing_provider(iam: Any) -> str | None:
    """The provider for GitHub's token URL; warns when it does not accept the STS audience."""
    for listed in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        arn = listed["Arn"]
        if arn.endswith(f":oidc-provider/{GITHUB_OIDC}"):
            audiences = iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)["ClientIDList"]
            if AUDIENCE not in audiences:
                print(
                    f"warning: {arn} does not accept the audience {AUDIENCE} ({audiences}): add it with "
                    f"`aws iam add-client-id-to-open-id-connect-provider --client-id {AUDIENCE} "
                    f"--open-id-connect-provider-arn {arn}`, or no workflow can assume the roles",
                    file=sys.stderr,
                )
            return arn
    return None


def main() -> int:
    import boto3

    print(existing_provider(boto3.client("iam")) or "")
    return 0


if __name__ == "__main__":
    sys.exit(main())
