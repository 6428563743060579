"""`make plan-diff`: what a change does to every environment's plan, as markdown fit for a PR comment.

Compares two plan directories (e.g. main's and the pull request's) file by file: resources
added, removed and changed, each change as a unified diff.
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path

# A PR comment holds 65,536 characters; keep room for several environments.
MAX_DIFF_LINES = 200


def files(plan: Path) -> dict[str, str]:
    if not plan.is_dir():
        return {}
    return {p.relative_to(plan).as_posix(): p.read_text() for p in sorted(plan.rglob("*")) if p.is_file()}


def environment_diff(env: str, before: dict[str, str], after: dict[str, str]) -> list[str]:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in set(before) & set(after) if before[k] != after[k] and k != "summary.md")
    if not (added or removed or changed):
        return [f"### {env}: no change", ""]
    lines = [f"### {env}: {len(added)} added, {len(removed)} removed, {len(changed)} changed", ""]
    lines += [f"- added `{name}`" for name in added] + [f"- removed `{name}`" for name in removed]
    for name in changed:
        diff = list(
            difflib.unified_diff(
                before[name].splitlines(),
                after[name].splitlines(),
                f"before/{name}",
                f"after/{name}",
                lineterm="",
            )
        )
        shown = diff[:MAX_DIFF_LINES] + (
            [f"... {len(diff) - MAX_DIFF_LINES} more lines"] if len(diff) > MAX_DIFF_LINES else []
        )
        lines += [
            "",
            f"<details><summary>changed <code>{name}</code></summary>",
            "",
            "```diff",
            *shown,
            "```",
            "",
            "</details>",
        ]
    return [*lines, ""]


def render(before: Path, after: Path) -> str:
    envs = sorted(
        {p.name for p in (*before.glob("*"), *after.glob("*")) if p.is_dir() and not p.name.startswith(".")}
    )
    lines = ["## Infrastructure plan diff", ""]
    for env in envs:
        if not (after / env).is_dir():
            lines += [f"### {env}: not planned in this run", ""]
            continue
        lines += environment_diff(env, files(before / env), files(after / env))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("before", type=Path, help="the base plan directory (build/plan of main)")
    parser.add_argument("after", type=Path, help="the changed plan directory")
    args = parser.parse_args(argv)
    if not args.after.is_dir():
        print(f"error: no plan at {args.after} (run `make plan` first)", file=sys.stderr)
        return 1
    print(render(args.before, args.after))
    return 0


if __name__ == "__main__":
    sys.exit(main())
