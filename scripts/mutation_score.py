"""Mutation score per module from a ``mutmut run`` (``make mutate``).

Reads mutmut's result files (``mutants/<module path>.meta``) and prints, per module, the
mutants killed (a test failed, timed out or crashed), survived (every test passed), without
covering tests, and not run; the score is killed / (killed + survived). With ``--survivors``
it also lists the surviving mutant names (``mutmut show NAME`` prints the diff).

    python scripts/mutation_score.py [mutants] [--survivors]
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

# mutmut's exit-code convention (mutmut.stats.status_by_exit_code), folded into four classes
KILLED_CODES = {1, 3, 24, -24, 36, 152, 255, -11, -9, 37}
SURVIVED, NO_TESTS, NOT_RUN = {0}, {5, 33}, {None, 2, 34}


def classify(code) -> str:
    if code in KILLED_CODES:
        return "killed"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    if code in NOT_RUN:
        return "not run"
    return "suspicious"


def scores(mutants_dir: Path) -> dict[str, tuple[Counter, list[str]]]:
    """module path -> (status counts, surviving mutant names)."""
    out = {}
    for meta in sorted(mutants_dir.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        counts, survivors = Counter(), []
        for name, code in data["exit_code_by_key"].items():
            status = classify(code)
            counts[status] += 1
            if status == "survived":
                survivors.append(name)
        out[str(meta.relative_to(mutants_dir))[: -len(".meta")]] = (counts, survivors)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mutants", nargs="?", default="mutants", type=Path)
    ap.add_argument("--survivors", action="store_true", help="list the surviving mutants")
    args = ap.parse_args(argv)
    if not args.mutants.is_dir():
        print(f"no {args.mutants}/ folder: run `make mutate` first", file=sys.stderr)
        return 2
    cols = ("killed", "survived", "no tests", "not run", "suspicious")
    print(f"{'module':<34}" + "".join(f"{c:>11}" for c in cols) + f"{'score':>8}")
    total = Counter()
    for module, (counts, survivors) in scores(args.mutants).items():
        if not counts["killed"] + counts["survived"]:
            continue  # nothing of this file was run (e.g. a narrowed MUTANTS)
        total.update(counts)
        score = counts["killed"] / (counts["killed"] + counts["survived"])
        print(f"{module:<34}" + "".join(f"{counts[c]:>11}" for c in cols) + f"{score:>8.1%}")
        if args.survivors:
            for name in survivors:
                print(f"    survived: {name}")
    if total["killed"] + total["survived"]:
        score = total["killed"] / (total["killed"] + total["survived"])
        print(f"{'all':<34}" + "".join(f"{total[c]:>11}" for c in cols) + f"{score:>8.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
