#!/usr/bin/env python3
"""Noise report: `upkeep check` over a directory of nginx configs, findings
counted per rule and per severity, so a maintainer sees at a glance which
rules speak most and how loudly.

Usage:
    bench/noise-report.py [DIR] [--upkeep PATH] [--nginx-version X.Y.Z]
                          [--json OUT.json] [--compare BEFORE.json]

DIR defaults to ../shared/corpus beside the repository. When DIR has a
SOURCES.tsv (the corpus layout), its files are checked, each through its
`_trees` copy when nginx_t.tsv names one (so relative includes resolve);
otherwise every `*.conf` file under DIR is checked. Files upkeep rejects
(exit 2: syntax errors, include cycles) are counted, not analysed.

--json writes the counts as JSON; --compare prints them side by side with
an earlier --json output (before/after a change).

The binary is UPKEEP or --upkeep, else a debug build made with cargo.
"""

import argparse
import json
import os
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SEVERITIES = ("error", "warning", "info")


def upkeep_binary(given):
    if given:
        return given
    if os.environ.get("UPKEEP"):
        return os.environ["UPKEEP"]
    print("building upkeep (debug)...", file=sys.stderr)
    subprocess.run(["cargo", "build", "-q", "-p", "upkeep-cli"], cwd=REPO, check=True)
    meta = subprocess.run(
        ["cargo", "metadata", "--format-version", "1", "--no-deps"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return str(Path(json.loads(meta.stdout)["target_directory"]) / "debug" / "upkeep")


def config_files(root):
    """(name shown, path checked) for every config under root."""
    sources = root / "SOURCES.tsv"
    if not sources.exists():
        return [(str(p.relative_to(root)), p) for p in sorted(root.rglob("*.conf"))]
    tree_path = {}
    nginx_t = root / "nginx_t.tsv"
    if nginx_t.exists():
        for line in nginx_t.read_text().splitlines()[1:]:
            cols = line.split("\t")
            if len(cols) > 1 and cols[1]:
                tree_path[cols[0]] = cols[1]
    files = []
    for line in sources.read_text().splitlines()[1:]:
        local = line.split("\t")[0]
        if local:
            files.append((local, root / tree_path.get(local, local)))
    return files


def check_one(binary, version, path):
    cmd = [binary, "check", str(path), "--format", "json", "--color", "never"]
    if version:
        cmd += ["--nginx-version", version]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired:
        return ("timeout", None)
    if p.returncode == 2:
        return ("input-error", None)
    if p.returncode not in (0, 1):
        return (f"exit {p.returncode}", None)
    try:
        return ("ok", json.loads(p.stdout))
    except json.JSONDecodeError:
        return ("bad-json", None)


def collect(binary, root, version):
    files = config_files(root)
    per_rule = defaultdict(Counter)  # rule -> severity -> count
    files_per_rule = Counter()
    names = {}
    outcomes = Counter()
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        results = pool.map(lambda f: check_one(binary, version, f[1]), files)
        for (_, _), (outcome, report) in zip(files, results):
            outcomes[outcome] += 1
            if report is None:
                continue
            seen = set()
            for f in report.get("findings", []):
                per_rule[f["rule"]][f["severity"]] += 1
                names[f["rule"]] = f.get("name", "")
                seen.add(f["rule"])
            for rule in seen:
                files_per_rule[rule] += 1
    return {
        "dir": str(root),
        "nginx_version": version,
        "files": len(files),
        "outcomes": dict(outcomes),
        "rules": {
            rule: {
                "name": names[rule],
                "files": files_per_rule[rule],
                **{s: per_rule[rule][s] for s in SEVERITIES},
            }
            for rule in sorted(per_rule)
        },
    }


def totals(data):
    t = Counter()
    for r in data["rules"].values():
        for s in SEVERITIES:
            t[s] += r[s]
    return t


def print_report(data, before=None):
    out = sys.stdout
    analysed = data["outcomes"].get("ok", 0)
    out.write(f"configs: {data['files']} under {data['dir']} ({analysed} analysed")
    others = {k: v for k, v in data["outcomes"].items() if k != "ok"}
    if others:
        out.write(", " + ", ".join(f"{v} {k}" for k, v in sorted(others.items())))
    out.write(")\n")
    if data["nginx_version"]:
        out.write(f"nginx version: {data['nginx_version']}\n")
    out.write("\n")

    def cell(rule, key):
        now = data["rules"].get(rule, {}).get(key, 0)
        if before is None:
            return f"{now}"
        was = before["rules"].get(rule, {}).get(key, 0)
        return f"{was}->{now}" if was != now else f"{now}"

    rules = sorted(set(data["rules"]) | set(before["rules"] if before else []))
    header = f"{'rule':<6} {'name':<36} {'error':>9} {'warning':>9} {'info':>11} {'files':>9}"
    out.write(header + "\n" + "-" * len(header) + "\n")
    for rule in rules:
        name = (data["rules"].get(rule) or before["rules"].get(rule))["name"]
        out.write(
            f"{rule:<6} {name[:36]:<36} {cell(rule, 'error'):>9} {cell(rule, 'warning'):>9}"
            f" {cell(rule, 'info'):>11} {cell(rule, 'files'):>9}\n"
        )
    out.write("-" * len(header) + "\n")
    now = totals(data)
    if before is None:
        line = ", ".join(f"{now[s]} {s}s" for s in SEVERITIES)
    else:
        was = totals(before)
        line = ", ".join(f"{s}s {was[s]} -> {now[s]}" for s in SEVERITIES)
    out.write(f"per severity: {line}\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("dir", nargs="?", default=str(REPO.parent / "shared" / "corpus"))
    ap.add_argument("--upkeep", help="upkeep binary (default: $UPKEEP or a debug build)")
    ap.add_argument("--nginx-version", default="1.28.0",
                    help="target nginx version passed to check (default 1.28.0)")
    ap.add_argument("--json", help="also write the counts to this file")
    ap.add_argument("--compare", help="an earlier --json output to compare against")
    args = ap.parse_args()

    root = Path(args.dir)
    if not root.is_dir():
        print(f"noise-report: {root}: not a directory", file=sys.stderr)
        return 2
    data = collect(upkeep_binary(args.upkeep), root, args.nginx_version)
    before = json.loads(Path(args.compare).read_text()) if args.compare else None
    print_report(data, before)
    if args.json:
        Path(args.json).write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
