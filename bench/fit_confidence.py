"""Fit the website extractor's confidence on the fit split of the labelled corpus, and print the table.

For every candidate the extractor produces on the fit companies (chosen and losing ones), it
records whether the value is right by the labels, under every prefix of the candidate's feature
chain (field, standing, quality, kind of statement, agreement). The extractor turns those counts
into confidences (core/web/extract/calibration.py); the test split is never read here.

    .venv/bin/python bench/fit_confidence.py [--write glaze_pipeline/core/web/extract/confidence.json]
"""

from __future__ import annotations

import argparse
import json
import math
from collections import defaultdict
from pathlib import Path

from extraction import DEFAULT_CORPUS, LABELS, matches, pages_of

from glaze_pipeline.core.web.extract import candidates
from glaze_pipeline.core.web.extract.calibration import ROOT, Table, chain, describe, probability, recalibrate

# How much a prefix's parent is worth, in candidates, and which features refine a field in which order:
# both chosen by leave-one-company-out on the fit split.
SMOOTHING_GRID = (4.0, 8.0, 16.0, 32.0)
# The field's own quality label ("flavour") only means something after the field.
ORDERS: tuple[tuple[str, ...], ...] = (
    ("field", "standing", "margin", "crowd", "flavour", "method", "support"),
    ("field", "standing", "margin", "crowd", "flavour", "support"),
    ("field", "outcome", "margin", "crowd", "flavour", "standing", "method", "support"),
    ("standing", "field", "margin", "crowd", "flavour", "method", "support"),
    ("standing", "margin", "field", "crowd", "flavour", "method", "support"),
    ("outcome", "field", "margin", "crowd", "flavour", "standing", "method", "support"),
    ("outcome", "margin", "field", "crowd", "flavour", "standing", "support"),
)

Record = tuple[dict[str, str], bool]  # a candidate's features and whether it is right
Counts = dict[str, tuple[int, int]]
Points = tuple[tuple[float, float], ...]


def records(corpus: Path, split: str = "fit") -> dict[str, list[Record]]:
    """Per company of the split: every scored candidate's feature chain and whether the labels call it right."""
    companies: dict[str, dict[str, object]] = json.loads(LABELS.read_text(encoding="utf-8"))["companies"]
    out: dict[str, list[Record]] = {}
    for slug, label in sorted(companies.items()):
        if label["split"] != split or not (corpus / slug).is_dir():
            continue
        url = str(label["url"])
        for candidate in candidates(pages_of(corpus / slug, url), url):
            accepted = label.get(candidate.field, "unscored")
            if accepted == "unscored":
                continue
            right = isinstance(accepted, list) and matches(candidate.field, candidate.value, accepted)
            out.setdefault(slug, []).append((describe(candidate), right))
    return out


def count(rows: list[Record], order: tuple[str, ...]) -> Counts:
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for described, right in rows:
        for prefix in (ROOT, *chain(described, order)):
            counts[prefix][0] += 1
            counts[prefix][1] += right
    return {k: (n, r) for k, (n, r) in counts.items()}


def without(total: Counts, *parts: Counts) -> Counts:
    """The counts with some companies' counts taken out: a table fitted as if they were never seen."""
    out = dict(total)
    for part in parts:
        for key, (n, right) in part.items():
            n0, r0 = out[key]
            out[key] = (n0 - n, r0 - right)
    return out


def isotonic(predictions: list[tuple[float, bool]]) -> list[list[float]]:
    """Pool adjacent violators: a non-decreasing map from predicted to observed share, as (predicted, share) points.

    Shrinking rare features towards their parents keeps estimates safe but pulls reliable values down;
    this second step, fitted on held-out predictions, takes out that bias.
    """
    blocks: list[list[float]] = []  # [sum of predictions, number right, count]
    for p, right in sorted(predictions):
        blocks.append([p, float(right), 1.0])
        while len(blocks) > 1 and blocks[-2][1] / blocks[-2][2] >= blocks[-1][1] / blocks[-1][2]:
            last = blocks.pop()
            blocks[-1] = [a + b for a, b in zip(blocks[-1], last, strict=True)]
    return [[round(total / n, 4), round(right / n, 4)] for total, right, n in blocks]


class Fit:
    """Held-out predictions for one (smoothing, order): every company predicted from the others only."""

    def __init__(self, by_company: dict[str, list[Record]], smoothing: float, order: tuple[str, ...]) -> None:
        self.by_company, self.smoothing, self.order = by_company, smoothing, order
        self.parts = {slug: count(rows, order) for slug, rows in by_company.items()}
        self.total = count([r for rows in by_company.values() for r in rows], order)

    def predict(self, slug: str, counts: Counts, points: Points = ()) -> list[tuple[float, bool]]:
        table = Table(self.smoothing, counts, self.order)
        return [
            (recalibrate(probability(chain(d, self.order), table), points), right) for d, right in self.by_company[slug]
        ]

    def held_out(self, skip: str | None = None) -> list[tuple[float, bool]]:
        """Leave-one-company-out predictions (of every company but `skip`, which is never seen at all)."""
        gone = [self.parts[skip]] if skip else []
        return [
            p
            for slug in self.by_company
            if slug != skip
            for p in self.predict(slug, without(self.total, self.parts[slug], *gone))
        ]

    def nested(self) -> list[tuple[float, bool]]:
        """Each company predicted by a table and a recalibration fitted without it: the model's honest record."""
        out = []
        for slug in self.by_company:
            points = tuple((a, b) for a, b in isotonic(self.held_out(skip=slug)))
            out.extend(self.predict(slug, without(self.total, self.parts[slug]), points))
        return out


def log_loss(predictions: list[tuple[float, bool]]) -> float:
    total = 0.0
    for p, right in predictions:
        p = min(max(p, 1e-3), 1 - 1e-3)
        total -= math.log(p if right else 1 - p)
    return total / max(len(predictions), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--write", type=Path, help="where to write the table (the extractor reads confidence.json)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"skipped: the evaluation corpus is not at {args.corpus}")
        print(json.dumps({"bench": "fit_confidence", "skipped": "corpus absent"}))
        return
    by_company = records(args.corpus)
    fits = {(k, o): Fit(by_company, k, o) for k in SMOOTHING_GRID for o in ORDERS}
    losses = {key: log_loss(fit.nested()) for key, fit in fits.items()}
    smoothing, order = min(losses, key=lambda ko: losses[ko])
    recalibration = isotonic(fits[(smoothing, order)].held_out())
    nested = fits[(smoothing, order)].nested()
    counts = fits[(smoothing, order)].total
    print(f"{'feature prefix':60} {'n':>5} {'right':>6} {'share':>6} {'confidence':>10}")
    table = Table(smoothing, counts, order)
    for prefix, (n, right) in sorted(counts.items()):
        parts = prefix.split("|")
        prefixes = [] if prefix == ROOT else ["|".join(parts[: i + 1]) for i in range(len(parts))]
        print(f"{prefix:60} {n:5} {right:6} {100 * right / n:6.1f} {100 * probability(prefixes, table):10.0f}")
    print("\nnested leave-one-company-out log loss, recalibration included (smoothing, order):")
    for (k, o), loss in sorted(losses.items(), key=lambda item: item[1]):
        print(f"  {loss:.4f}  {k:g}  {' > '.join(o)}")
    print(f"chosen: smoothing {smoothing:g}, order {' > '.join(order)}")
    print("its nested held-out record per decile (what a new company's values should expect):")
    for low in range(0, 100, 10):
        cell = [(p, r) for p, r in nested if low <= round(100 * p) < low + 10 or (low == 90 and round(100 * p) == 100)]
        if cell:
            mean, share = 100 * sum(p for p, _ in cell) / len(cell), 100 * sum(r for _, r in cell) / len(cell)
            print(f"  {low:>3}-{low + 9:<3} {len(cell):5} values  confidence {mean:5.1f}  right {share:5.1f}")
    print(
        "recalibration (held-out prediction -> observed share): "
        + ", ".join(f"{p:.2f}->{a:.2f}" for p, a in recalibration)
    )
    if args.write:
        data = {
            "fitted_on": "bench/corpus_labels.json, split fit",
            "smoothing": smoothing,
            "order": list(order),
            "recalibration": recalibration,
            "counts": counts,
        }
        args.write.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    n, right = counts.get(ROOT, (0, 0))
    print(json.dumps({"bench": "fit_confidence", "candidates": n, "right": right, "prefixes": len(counts),
                      "smoothing": smoothing, "held_out_log_loss": round(losses[(smoothing, order)], 4)}))  # fmt: skip


if __name__ == "__main__":
    main()
