"""Summarize a tempest (stestr) run from its subunit v2 stream.

  summarize.py RESULTS.subunit --out DIR [--wall SECONDS] [--expected-skips FILE]

Writes DIR/summary.json (counts, every test with status and duration, skip reasons)
and DIR/failures.txt (each failing test with its traceback), prints the counts and the
failing tests, and exits 1 when a test failed or none ran. With --expected-skips, every
test tempest skipped must match a line of FILE (a regex, then `# reason`), and every
line must match a skipped test: a new skip, or a listed one that no longer happens
(remove it: the list only shrinks), fails the run too. Run with the tempest venv's
python (python-subunit and testtools come with tempest).
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path

import subunit
import testtools

PASSED = {"success", "xfail"}
FAILED = {"fail", "uxsuccess", "inprogress"}
SKIPPED = {"skip"}


def text(content) -> str:
    try:
        return content.as_text()
    except Exception:  # noqa: BLE001 - binary attachments
        return "".join(c.decode("utf-8", "replace") for c in content.iter_bytes())


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("stream", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--wall", type=float, default=None, help="wall time of the run, seconds")
    ap.add_argument("--expected-skips", type=Path, default=None,
                    help="regexes (one per line, '# reason' after) of the skips that are known")
    a = ap.parse_args()

    tests: list[dict] = []
    with open(a.stream, "rb") as f:
        case = subunit.ByteStreamToStreamResult(f, non_subunit_name="stdout")
        result = testtools.StreamToDict(tests.append)
        result.startTestRun()
        try:
            case.run(result)
        finally:
            result.stopTestRun()

    rows, failures, skips = [], [], collections.Counter()
    counts = collections.Counter()
    for t in tests:
        status = t["status"]
        if status == "exists":  # listed, not run
            continue
        start, stop = t["timestamps"]
        duration = (stop - start).total_seconds() if start and stop else None
        kind = "passed" if status in PASSED else "failed" if status in FAILED else \
            "skipped" if status in SKIPPED else status
        counts[kind] += 1
        rows.append({"id": t["id"], "status": kind, "duration": duration})
        details = t.get("details") or {}
        if kind == "failed":
            tb = text(details["traceback"]) if "traceback" in details else ""
            other = {k: text(v) for k, v in details.items() if k not in ("traceback", "pythonlogging")}
            failures.append({"id": t["id"], "traceback": tb, "details": other})
        elif kind == "skipped":
            reason = text(details["reason"]).strip() if "reason" in details else "(no reason)"
            skips[reason] += 1

    rows.sort(key=lambda r: r["id"])
    failures.sort(key=lambda r: r["id"])
    a.out.mkdir(parents=True, exist_ok=True)
    summary = {
        "passed": counts["passed"],
        "failed": counts["failed"],
        "skipped": counts["skipped"],
        "wall_seconds": a.wall,
        "skip_reasons": dict(skips.most_common()),
        "tests": rows,
        "failures": failures,
    }
    (a.out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    with open(a.out / "failures.txt", "w") as f:
        for fl in failures:
            f.write(f"==== {fl['id']}\n{fl['traceback']}\n")
            for k, v in fl["details"].items():
                f.write(f"---- {k}\n{v}\n")
            f.write("\n")

    wall = f" in {a.wall:.0f} s" if a.wall is not None else ""
    print(f"\n=== tempest: {counts['passed']} passed, {counts['failed']} failed, "
          f"{counts['skipped']} skipped{wall} ===")
    for fl in failures:
        print(f"FAILED {fl['id']}")
    if failures:
        print(f"(tracebacks: {a.out / 'failures.txt'})")
    if not rows:
        print("no test ran", file=sys.stderr)
        return 1
    bad_skips = check_skips(a.expected_skips, [r["id"] for r in rows if r["status"] == "skipped"])
    return 1 if counts["failed"] or bad_skips else 0


def check_skips(path: Path | None, skipped: list[str]) -> bool:
    """Whether the skips differ from the list in `path` (printed when they do)."""
    if path is None:
        return False
    import re

    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        regex, _, reason = line.partition(" #")
        patterns.append((re.compile(regex.strip()), reason.strip()))
    unexpected = [t for t in skipped if not any(p.search(t) for p, _ in patterns)]
    stale = [p.pattern for p, _ in patterns if not any(p.search(t) for t in skipped)]
    for t in unexpected:
        print(f"UNEXPECTED SKIP {t} (not in {path}: find out why, fix it or list it with its reason)")
    for p in stale:
        print(f"NO LONGER SKIPPED {p} (remove it from {path}: the list only shrinks)")
    return bool(unexpected or stale)


if __name__ == "__main__":
    sys.exit(main())
