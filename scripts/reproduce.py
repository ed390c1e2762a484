"""Reproduce the paper's evaluation as one report folder (Tables 1, 2, 4; Figures 6-10).

    python scripts/reproduce.py [--setting quick|full] [--out DIR] [--seeds 0,1,...] [--text-rows]
                                [--methods ROW,...] [--resume]
                                [train.py overrides, e.g. data=demo backbone.weights=...]

--resume --out DIR reuses the runs a previous (interrupted) reproduction finished in DIR.
--methods runs only those Table 2 rows (e.g. to split a reproduction over two processes on
the same --out; a last --resume without it writes the whole report).

Thin wrapper: the settings are conf/reproduce.yaml, the work is gifemo.paper.reproduce and
gifemo.paper.report. Prints the path of report.md.
"""
import argparse
import logging
import time
from pathlib import Path

from gifemo.paper.report import reproduce
from gifemo.paper.reproduce import TAG_FEATURE_ROWS, hydra_composer, load_settings, only_rows

CONF = Path(__file__).resolve().parents[1] / "conf"


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--setting", default="quick", help="a setting of conf/reproduce.yaml (quick | full)")
    ap.add_argument("--out", default=None, help="report folder (default outputs/reproduce/<setting>_<time>)")
    ap.add_argument("--seeds", default=None, help="comma-separated test-split seeds (default: the setting's)")
    ap.add_argument("--text-rows", action="store_true",
                    help="also the lasso / trace-norm / clustered-MTL rows with text-embedded tags "
                         "and with both tag features (beyond the paper; an extra table)")
    ap.add_argument("--methods", default=None,
                    help="comma-separated Table 2 rows to run (default: the setting's, plus the "
                         "tag-feature rows with --text-rows), e.g. visual_lasso,tag_lasso")
    ap.add_argument("--resume", action="store_true",
                    help="reuse the runs that a previous reproduction into --out finished "
                         "(their results are kept in each run directory)")
    ap.add_argument("overrides", nargs="*", help="train.py overrides applied to every run")
    args = ap.parse_args(argv)
    if args.resume and not args.out:
        ap.error("--resume needs --out: the report folder of the reproduction to continue")
    logging.basicConfig(level=logging.WARNING, format="[%(asctime)s][%(name)s][%(levelname)s] - %(message)s")
    settings = load_settings(CONF / "reproduce.yaml", args.setting)
    if args.text_rows:
        settings["tag_feature_rows"] = list(TAG_FEATURE_ROWS)
    if args.methods is not None:
        try:
            settings = only_rows(settings, args.methods.split(","))
        except ValueError as e:
            ap.error(f"--methods: {e}")
    out = Path(args.out or f"outputs/reproduce/{args.setting}_{time.strftime('%Y-%m-%d_%H-%M-%S')}")
    t0 = time.perf_counter()
    _, report = reproduce(hydra_composer(CONF), settings, out, args.overrides,
                          None if args.seeds is None else [int(s) for s in args.seeds.split(",")],
                          resume=args.resume)
    print(f"report: {report}  ({time.perf_counter() - t0:.0f} s)", flush=True)
    return report


if __name__ == "__main__":
    main()
