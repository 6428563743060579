"""The offline checkers the tests run, called one way: checkov from the development venv, JSON back.

checkov lives in `.venv` (its pins clash with Pulumi's), so the infra tests call it as a CLI too.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKOV = REPO / ".venv" / "bin" / "checkov"


def checkov(*args: str | Path) -> dict:
    """`checkov <args> -o json` without network (no package-update check, no policy download)."""
    result = subprocess.run(
        [CHECKOV, *args, "--skip-download", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CKV_SKIP_PACKAGE_UPDATE_CHECK": "true"},
    )
    report = json.loads(result.stdout)
    return report[0] if isinstance(report, list) else report
