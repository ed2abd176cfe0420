"""Strike each fault at a chosen moment of a real table run and print what it left: one row per fault.

The scenarios are `glaze_pipeline/sandbox/faults.py`, the same ones `glaze_pipeline_tests/test_faults.py`
asserts on. Servers a fault kills are private ones the scenario starts; the others are
GLAZE_DATABASE_URL / GLAZE_REDIS_URL when set (a scratch database and key prefix on them, dropped
after), else embedded ones under a temporary GLAZE_HOME. Last line: one JSON object.

    .venv/bin/python bench/faults.py                 # every fault
    .venv/bin/python bench/faults.py --only chaos redis
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from glaze_pipeline.sandbox import faults

COLUMNS = ("fault", "rows_in", "rows_out", "duplicates", "extra_paid_calls", "in_flight", "outcome")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="*", choices=sorted(faults.SCENARIOS), help="these faults only")
    args = parser.parse_args()
    chosen = args.only or list(faults.SCENARIOS)
    results = []
    with faults.scratch_environment(os.environ.get("GLAZE_DATABASE_URL"), os.environ.get("GLAZE_REDIS_URL")):
        for name in chosen:
            started = time.monotonic()
            with tempfile.TemporaryDirectory(prefix=f"glaze-fault-{name}-") as folder:
                outcome = faults.SCENARIOS[name](Path(folder))
            results.append(outcome.row() | {"seconds": round(time.monotonic() - started, 1)})
    widths = {c: max(len(c), *(len(str(r[c])) for r in results)) for c in COLUMNS}
    print("  ".join(c.ljust(widths[c]) for c in COLUMNS))
    for r in results:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in COLUMNS))
    print(
        "(seconds per fault, on a machine shared with other work: "
        + ", ".join(f"{r['fault']} {r['seconds']}" for r in results)
        + ")"
    )
    print(json.dumps({"faults": results}))


if __name__ == "__main__":
    main()
