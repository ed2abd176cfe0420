"""Score the website extractor on the real company pages of ../shared/corpus against our own labels.

Labels live in bench/corpus_labels.json (written by reading the pages; the pages are never copied
here). Per company and field a label is a list of accepted values, or null for "the pages do not
state it" (a value emitted there is wrong); fields a company's label leaves out are not scored.
Descriptions count as right when they start like the labelled text.

Per field it prints: precision of the top values with confidence >= 80, recall (labelled values
whose top value is right, at any confidence, and at >= 80), and how many top values were emitted.

    .venv/bin/python bench/extraction.py [--corpus ../shared/corpus/sites] [--show-errors]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract import Page, extract
from glaze_pipeline.core.web.extract.base import compact

HERE = Path(__file__).resolve().parent
LABELS = HERE / "corpus_labels.json"
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus" / "sites"
THRESHOLD = 80


def pages_of(folder: Path, root_url: str) -> list[Page]:
    """home.html is the site root; other pages sit below it under their file's name."""
    files = sorted(folder.glob("*.html"), key=lambda p: (p.name != "home.html", p.name))
    return [
        Page(root_url if f.name == "home.html" else root_url.rstrip("/") + "/" + f.stem, f.read_bytes()) for f in files
    ]


def matches(field: str, value: str, accepted: list[str]) -> bool:
    if field == "company_description":
        return any(value.lower().startswith(a.lower()) for a in accepted)
    if field == "company_name":
        return compact(value) in {compact(a) for a in accepted}
    if field in ("company_email", "company_city"):
        return value.lower() in {a.lower() for a in accepted}
    return value in accepted


def top_values(found: list[Found]) -> dict[str, Found]:
    best: dict[str, Found] = {}
    for f in found:
        if f.field not in best or f.confidence > best[f.field].confidence:
            best[f.field] = f
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--show-errors", action="store_true", help="print every wrong or missed value")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"skipped: the evaluation corpus is not at {args.corpus} (../shared is absent in this checkout)")
        print(json.dumps({"bench": "extraction", "skipped": "corpus absent"}))
        return

    labels: dict[str, dict[str, object]] = json.loads(LABELS.read_text(encoding="utf-8"))
    stats: dict[str, dict[str, int]] = {}
    started = time.perf_counter()
    pages_read = 0
    for slug, label in sorted(labels.items()):
        folder = args.corpus / slug
        if not folder.is_dir():
            print(f"warning: {slug} is labelled but not in the corpus", file=sys.stderr)
            continue
        pages = pages_of(folder, str(label["url"]))
        pages_read += len(pages)
        best = top_values(extract(pages, str(label["url"])))
        for field, accepted in label.items():
            if field == "url":
                continue
            s = stats.setdefault(
                field, dict.fromkeys(("labelled", "emitted", "sure", "sure_right", "right", "right80"), 0)
            )
            top = best.get(field)
            stated = isinstance(accepted, list)
            right = top is not None and stated and matches(field, top.value, accepted)  # type: ignore[arg-type]
            s["labelled"] += stated
            s["emitted"] += top is not None
            if top is not None and top.confidence >= THRESHOLD:
                s["sure"] += 1
                s["sure_right"] += right
            s["right"] += right
            s["right80"] += right and top is not None and top.confidence >= THRESHOLD
            if args.show_errors and not right and (stated or top is not None):
                got = f"{top.value!r} ({top.confidence}, {top.evidence})" if top else "nothing"
                print(f"  {slug:32} {field:24} want {accepted!r:.80}  got {got:.160}")
    elapsed = time.perf_counter() - started

    def pct(n: int, d: int) -> float | None:
        return round(100 * n / d, 1) if d else None

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1f}"

    print(f"{'field':24} {'labelled':>8} {'emitted':>8} {'>=80':>6} {'prec@80':>8} {'recall':>7} {'rec@80':>7}")
    totals = dict.fromkeys(("labelled", "emitted", "sure", "sure_right", "right", "right80"), 0)
    per_field = {}
    for field, s in sorted(stats.items()):
        for k in totals:
            totals[k] += s[k]
        precision, recall, recall80 = (
            pct(s["sure_right"], s["sure"]),
            pct(s["right"], s["labelled"]),
            pct(s["right80"], s["labelled"]),
        )
        per_field[field] = {
            "precision_at_80": precision,
            "recall": recall,
            "recall_at_80": recall80,
            "emitted": s["emitted"],
        }
        print(
            f"{field:24} {s['labelled']:8} {s['emitted']:8} {s['sure']:6} "
            f"{fmt(precision):>8} {fmt(recall):>7} {fmt(recall80):>7}"
        )
    precision = pct(totals["sure_right"], totals["sure"])
    recall = pct(totals["right"], totals["labelled"])
    print(
        f"{'all fields':24} {totals['labelled']:8} {totals['emitted']:8} {totals['sure']:6} "
        f"{fmt(precision):>8} {fmt(recall):>7} {fmt(pct(totals['right80'], totals['labelled'])):>7}"
    )
    print(
        f"{len(labels)} companies, {pages_read} pages, {elapsed:.2f}s "
        f"({1000 * elapsed / max(pages_read, 1):.1f} ms/page)"
    )
    print(
        json.dumps(
            {
                "bench": "extraction",
                "companies": len(labels),
                "pages": pages_read,
                "precision_at_80": precision,
                "recall": recall,
                "recall_at_80": pct(totals["right80"], totals["labelled"]),
                "ms_per_page": round(1000 * elapsed / max(pages_read, 1), 1),
                "fields": per_field,
            }
        )
    )


if __name__ == "__main__":
    main()
