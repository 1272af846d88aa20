"""Compares two protreplay.report/1 documents as JSON data (key order and layout do not matter).
The only values allowed to differ are the report paths in `merged.inputs`, compared by file name.

    python3 same_report.py A.json B.json
"""
import json
import os
import sys


def normalized(path):
    with open(path) as f:
        doc = json.load(f)
    merged = doc.get("merged")
    if isinstance(merged, dict) and isinstance(merged.get("inputs"), list):
        merged["inputs"] = [os.path.basename(p) for p in merged["inputs"]]
    return doc


def differences(a, b, path="", out=None):
    out = [] if out is None else out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'B' if k not in a else 'A'}")
            else:
                differences(a[k], b[k], f"{path}.{k}", out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            differences(x, y, f"{path}[{i}]", out)
    elif a != b:
        out.append(f"{path}: {json.dumps(a)[:80]} != {json.dumps(b)[:80]}")
    return out


def main() -> None:
    a, b = sys.argv[1:3]
    diffs = differences(normalized(a), normalized(b))
    if diffs:
        print(f"{a} and {b} differ in {len(diffs)} places:", *diffs[:20], sep="\n  ")
        sys.exit(1)
    print(f"same report: {a} == {b} (as JSON data)")


if __name__ == "__main__":
    main()
