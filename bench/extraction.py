"""Score the website extractor on the real company pages of ../shared/corpus against our own labels.

Labels live in bench/corpus_labels.json (written by reading the pages; the pages are never copied
here), with each company in the `fit` or the `test` split (a hash of its slug). The confidence
mapping is fitted on `fit` only (bench/fit_confidence.py), so figures are reported on `test`.
Per company and field a label is a list of accepted values, or null for "the pages do not state
it" (a value emitted there is wrong); fields a company's label leaves out are not scored.

It prints, per field: precision of the values with confidence >= 80, recall (labelled values whose
chosen value is right, at any confidence and at >= 80), and how many values were emitted; then a
reliability table per confidence decile (accuracy beside mean confidence), over every value the
extractor emits (losing candidates included) and over the chosen values alone.

Speed: after the scoring pass (the warm-up), the same pages are extracted `--repeat` more times; it
prints the median, min and max ms/page of CPU time, beside the time parsing the pages and splitting their
text takes alone (the floor every method shares), measured in the same run.

    .venv/bin/python bench/extraction.py [--split test|fit|all] [--corpus DIR] [--show-errors] [--repeat N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from glaze_pipeline.core.model.candidates import Found
from glaze_pipeline.core.web.extract import Page, extract
from glaze_pipeline.core.web.extract.base import parse_page
from glaze_pipeline.core.web.extract.text import visible_lines

HERE = Path(__file__).resolve().parent
LABELS = HERE / "corpus_labels.json"
DEFAULT_CORPUS = HERE.parent.parent / "shared" / "corpus" / "sites"
THRESHOLD = 80
MIN_DECILE = 20  # the calibration goal applies to deciles with at least this many values


def pages_of(folder: Path, root_url: str) -> list[Page]:
    """home.html is the site root; other pages sit below it under their file's name."""
    files = sorted(folder.glob("*.html"), key=lambda p: (p.name != "home.html", p.name))
    return [
        Page(root_url if f.name == "home.html" else root_url.rstrip("/") + "/" + f.stem, f.read_bytes()) for f in files
    ]


def squeeze(text: str) -> str:
    """Letters and digits only, lowercased and accents folded, to compare names and places."""
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return "".join(ch for ch in folded.lower() if ch.isalnum())


def _host(url: str) -> str:
    return (urlsplit(url if "://" in url else "http://" + url).hostname or "").removeprefix("www.")


def matches(field_name: str, value: str, accepted: list[str]) -> bool:
    if field_name == "company_description":
        return any(" ".join(value.lower().split()).startswith(" ".join(a.lower().split())) for a in accepted)
    if field_name in ("company_name", "company_city", "company_email"):
        return squeeze(value) in {squeeze(a) for a in accepted}
    if field_name == "company_hq_location":  # right when it names an accepted place
        return any(squeeze(a.split(",")[0]) in squeeze(value) for a in accepted)
    if field_name == "company_website":
        return _host(value) in {_host(a) for a in accepted}
    if field_name in ("company_twitter", "company_instagram", "company_youtube", "company_github"):
        return value.casefold() in {a.casefold() for a in accepted}
    return value in accepted


def chosen_values(found: list[Found]) -> dict[str, Found]:
    """The value the merge would pick per field: the highest confidence, the first of equals."""
    best: dict[str, Found] = {}
    for f in found:
        if f.field not in best or f.confidence > best[f.field].confidence:
            best[f.field] = f
    return best


@dataclass
class FieldScore:
    labelled: int = 0
    emitted: int = 0
    sure: int = 0  # values (any candidate) at >= THRESHOLD
    sure_right: int = 0
    right: int = 0  # chosen value right
    right80: int = 0  # chosen value right and >= THRESHOLD


@dataclass
class Scores:
    fields: dict[str, FieldScore] = field(default_factory=dict)
    every: list[tuple[int, bool]] = field(default_factory=list)  # (confidence, right) of every scored value
    chosen: list[tuple[int, bool]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def score_company(slug: str, label: dict[str, object], found: list[Found], scores: Scores) -> None:
    best = chosen_values(found)
    for name, accepted in label.items():
        if name in ("url", "split"):
            continue
        s = scores.fields.setdefault(name, FieldScore())
        stated = isinstance(accepted, list)
        s.labelled += stated
        for f in (f for f in found if f.field == name):
            ok = stated and matches(name, f.value, accepted)  # type: ignore[arg-type]
            scores.every.append((f.confidence, ok))
            if f.confidence >= THRESHOLD:
                s.sure += 1
                s.sure_right += ok
        top = best.get(name)
        right = top is not None and stated and matches(name, top.value, accepted)  # type: ignore[arg-type]
        if top is not None:
            s.emitted += 1
            scores.chosen.append((top.confidence, right))
        s.right += right
        s.right80 += right and top is not None and top.confidence >= THRESHOLD
        if not right and (stated or top is not None):
            got = f"{top.value!r} ({top.confidence}, {top.evidence})" if top else "nothing"
            scores.errors.append(f"  {slug:30} {name:22} want {accepted!r:.70}  got {got:.170}")


def pct(n: int, d: int) -> float | None:
    return round(100 * n / d, 1) if d else None


def fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def field_table(scores: Scores) -> dict[str, dict[str, object]]:
    print(f"{'field':24} {'labelled':>8} {'emitted':>8} {'>=80':>5} {'prec@80':>8} {'recall':>7} {'rec@80':>7}")
    total = FieldScore()
    per_field: dict[str, dict[str, object]] = {}
    for name, s in sorted(scores.fields.items()):
        for attr in vars(total):
            setattr(total, attr, getattr(total, attr) + getattr(s, attr))
        per_field[name] = {
            "precision_at_80": pct(s.sure_right, s.sure),
            "recall": pct(s.right, s.labelled),
            "recall_at_80": pct(s.right80, s.labelled),
            "labelled": s.labelled,
            "emitted": s.emitted,
        }
        print(
            f"{name:24} {s.labelled:8} {s.emitted:8} {s.sure:5} {fmt(pct(s.sure_right, s.sure)):>8} "
            f"{fmt(pct(s.right, s.labelled)):>7} {fmt(pct(s.right80, s.labelled)):>7}"
        )
    per_field["all"] = {
        "precision_at_80": pct(total.sure_right, total.sure),
        "recall": pct(total.right, total.labelled),
        "recall_at_80": pct(total.right80, total.labelled),
        "labelled": total.labelled,
        "emitted": total.emitted,
    }
    print(
        f"{'all fields':24} {total.labelled:8} {total.emitted:8} {total.sure:5} "
        f"{fmt(pct(total.sure_right, total.sure)):>8} {fmt(pct(total.right, total.labelled)):>7} "
        f"{fmt(pct(total.right80, total.labelled)):>7}"
    )
    return per_field


def reliability(title: str, values: list[tuple[int, bool]]) -> dict[str, object]:
    """Per confidence decile: count, mean confidence, accuracy, and the gap the goal bounds by 5 points."""
    print(f"\nreliability, {title}")
    print(f"{'decile':>8} {'values':>7} {'mean conf':>10} {'accuracy':>9} {'gap':>6}")
    rows = []
    for low in range(0, 100, 10):
        cell = [(c, ok) for c, ok in values if low <= c < low + 10 or (low == 90 and c == 100)]
        if not cell:
            continue
        mean = sum(c for c, _ in cell) / len(cell)
        accuracy = 100 * sum(ok for _, ok in cell) / len(cell)
        gap = accuracy - mean
        mark = "" if len(cell) < MIN_DECILE or abs(gap) <= 5 else "  > 5"
        print(
            f"{low:>3}-{low + 9 if low < 90 else 100:<4} {len(cell):7} {mean:10.1f} {accuracy:9.1f} {gap:+6.1f}{mark}"
        )
        rows.append({"decile": low, "n": len(cell), "mean_conf": round(mean, 1), "accuracy": round(accuracy, 1)})
    counted = [r for r in rows if int(r["n"]) >= MIN_DECILE]
    worst = max((abs(float(r["accuracy"]) - float(r["mean_conf"])) for r in counted), default=None)
    print(f"largest gap in deciles with >= {MIN_DECILE} values: {fmt(worst)} points")
    return {"deciles": rows, "max_gap": None if worst is None else round(worst, 1)}


Work = list[tuple[list[Page], str]]  # each company's pages and its site's URL


def ms_per_page(work: Work, repeat: int, parse_only: bool = False) -> list[float]:
    """CPU milliseconds per page of each of `repeat` passes over every company's pages."""
    pages = sum(len(p) for p, _ in work)
    passes = []
    for _ in range(repeat):
        started = time.process_time()
        for company_pages, url in work:
            if parse_only:
                for doc in (parse_page(page) for page in company_pages):
                    if doc is not None:
                        visible_lines(doc)
            else:
                extract(company_pages, url)
        passes.append(1000 * (time.process_time() - started) / max(pages, 1))
    return passes


def speed(work: Work, repeat: int) -> dict[str, float]:
    extraction, parsing = ms_per_page(work, repeat), ms_per_page(work, repeat, parse_only=True)
    figures = {
        "ms_per_page": round(statistics.median(extraction), 1),
        "ms_per_page_min": round(min(extraction), 1),
        "ms_per_page_max": round(max(extraction), 1),
        "parse_ms_per_page": round(statistics.median(parsing), 1),
    }
    print(
        f"\nspeed, CPU time, median of {repeat} after a warm-up: {figures['ms_per_page']} ms/page "
        f"(min {figures['ms_per_page_min']}, max {figures['ms_per_page_max']}); parsing and splitting the text "
        f"alone {figures['parse_ms_per_page']} ms/page"
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    parser.add_argument("--split", choices=("test", "fit", "all"), default="test")
    parser.add_argument("--show-errors", action="store_true", help="print every wrong or missed chosen value")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes after the scoring pass (0: none)")
    args = parser.parse_args()
    if not args.corpus.is_dir():
        print(f"skipped: the evaluation corpus is not at {args.corpus} (../shared is absent in this checkout)")
        print(json.dumps({"bench": "extraction", "skipped": "corpus absent"}))
        return

    companies: dict[str, dict[str, object]] = json.loads(LABELS.read_text(encoding="utf-8"))["companies"]
    chosen = {s: c for s, c in companies.items() if args.split == "all" or c["split"] == args.split}
    scores = Scores()
    work: Work = []
    for slug, label in sorted(chosen.items()):
        folder = args.corpus / slug
        if not folder.is_dir():
            print(f"warning: {slug} is labelled but not in the corpus", file=sys.stderr)
            continue
        pages = pages_of(folder, str(label["url"]))
        work.append((pages, str(label["url"])))
        score_company(slug, label, extract(pages, str(label["url"])), scores)
    pages_read = sum(len(p) for p, _ in work)

    print(f"split {args.split}: {len(chosen)} companies, {pages_read} pages\n")
    per_field = field_table(scores)
    every = reliability("every value emitted (losing candidates included)", scores.every)
    top = reliability("the chosen value per field", scores.chosen)
    if args.show_errors:
        print("\nwrong or missed chosen values:")
        print("\n".join(scores.errors))
    timing = speed(work, args.repeat) if args.repeat > 0 else {}
    summary = {
        "bench": "extraction",
        "split": args.split,
        "companies": len(chosen),
        "pages": pages_read,
        "precision_at_80": per_field["all"]["precision_at_80"],
        "recall": per_field["all"]["recall"],
        "recall_at_80": per_field["all"]["recall_at_80"],
        "max_decile_gap": every["max_gap"],
        "max_decile_gap_chosen": top["max_gap"],
        **timing,
        "fields": per_field,
        "reliability": every["deciles"],
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
