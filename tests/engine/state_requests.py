"""The S3 and KMS requests a real CLI sent, as the IAM calls AWS would authorize them as.

Requests on the local bucket are named as calls on the bucket the bootstrap creates, so the
bootstrap's own role policies (read under mocks) can be evaluated against what the engine did. The
CLI's own KMS calls are its stack's secrets provider: the bootstrap's key for that environment.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from tests.infra.iam import ACCOUNT, REGION, STATE_BUCKET, Call

OBJECT_ACTIONS = {
    "GET": "s3:GetObject",
    "HEAD": "s3:GetObject",
    "PUT": "s3:PutObject",
    "DELETE": "s3:DeleteObject",
}
BUCKET_QUERIES = {"versioning": "s3:GetBucketVersioning", "location": "s3:GetBucketLocation"}


def secrets_key(stack: str) -> str:
    """The bootstrap's secrets key of a stack, as infra/offline/mocks.py's mocks name it."""
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/secrets-{stack}"


def iam_calls(requests: list[dict], bucket: str, stack: str = "dev") -> list[Call]:
    """One call per request; anything not recognised becomes an `unknown:` call, which no policy allows."""
    calls: list[Call] = []
    for request in requests:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        target = headers.get("x-amz-target", "")
        if target.startswith("TrentService."):
            calls.append((f"kms:{target.partition('.')[2]}", secrets_key(stack), {}))
            continue
        url = urlsplit(request["url"])
        name, _, key = unquote(url.path).lstrip("/").partition("/")
        method = request["method"]
        if name != bucket:
            calls.append((f"unknown:{method}", request["url"], {}))
        elif key:
            if method == "PUT" and "x-amz-copy-source" in headers:
                source = unquote(headers["x-amz-copy-source"]).lstrip("/").partition("/")[2]
                calls.append(("s3:GetObject", f"{STATE_BUCKET}/{source}", {}))
            calls.append((OBJECT_ACTIONS.get(method, f"unknown:{method}"), f"{STATE_BUCKET}/{key}", {}))
        else:
            query = parse_qs(url.query, keep_blank_values=True)
            named = [action for word, action in BUCKET_QUERIES.items() if word in query]
            listing = "s3:ListBucket" if method in ("GET", "HEAD") else f"unknown:{method}"
            action = named[0] if named else listing
            calls.append((action, STATE_BUCKET, {}))
    return calls
