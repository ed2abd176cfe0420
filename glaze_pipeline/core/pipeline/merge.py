"""Merge candidates into one wide record per entity: best value per field, agreement boosts, conflicts kept.

Rules: the highest (boosted) confidence wins per (row, field); ties go to the
provider earlier in the waterfall (input hints first); every extra independent
source that found the same value adds `AGREEMENT_BOOST`, capped at 100; losing
values stay in the provenance as conflicts so nothing a provider said is lost.
An empty field keeps the most useful reason any provider gave (`core.model.status.most_useful`),
and `audit_trail` marks, for every candidate, whether it was chosen and why not.

Landing policy: a best value below `min_confidence` (GLAZE_MIN_CONFIDENCE) that no
provider beat is kept only as a candidate. The record's cell stays empty, the field's
status is `low_confidence`, and the provenance holds the value, its confidence and
source, so a user can see it, and lower the threshold, without it passing for a fact.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import polars as pl

from glaze_pipeline.core.model.candidates import CANDIDATE_SCHEMA, EVIDENCE, INPUT_SOURCE
from glaze_pipeline.core.model.fields import CATALOG, FIELD_NAMES, SUBJECT_OF_ENTITY, EntityType, implausible
from glaze_pipeline.core.model.records import AUDIT_COLUMNS, RECORD_KEY_COLUMNS, record_schema
from glaze_pipeline.core.model.status import Outcome, Status, most_useful, row_status_of

AGREEMENT_BOOST = 10


def _subject_pairs() -> pl.DataFrame:
    return pl.DataFrame(
        [(e.value, n) for e in EntityType for n in FIELD_NAMES if CATALOG[n].subject == SUBJECT_OF_ENTITY[e]],
        schema={"entity_type": pl.String, "field": pl.String},
        orient="row",
    )


def merge(
    rows: pl.DataFrame,
    wanted: Sequence[str],
    frames: Sequence[pl.DataFrame],
    priority: Sequence[str],
    min_confidence: int = 0,
    *,
    fills: Mapping[str, Collection[str]] | None = None,
) -> pl.DataFrame:
    """One wide record per entity of `rows`, from the candidate frames of every stage.

    Values below `min_confidence` stay candidates (status low_confidence); 0 lands every value.
    `fills` (provider → the fields it can fill) keeps a provider's failure out of the fields it could
    never have filled; without it, a provider's failure speaks for every field of the row.
    """
    all_candidates = (
        pl.concat([f.select(list(CANDIDATE_SCHEMA)) for f in frames], how="vertical")
        if frames
        else pl.DataFrame(schema=CANDIDATE_SCHEMA)
    )
    entities = rows.select(*RECORD_KEY_COLUMNS)
    options = _ranked_options(all_candidates, entities, wanted, [INPUT_SOURCE, *priority])
    failed = _outcomes_by_row(all_candidates)
    cost_of = dict(all_candidates.group_by("row_key").agg(cost_usd=pl.col("cost_usd").sum()).iter_rows())
    wanted_set = set(wanted)
    fields_of = {  # per entity type, the wanted fields about its subject, in catalog order
        e.value: [n for n in FIELD_NAMES if n in wanted_set and CATALOG[n].subject == SUBJECT_OF_ENTITY[e]]
        for e in EntityType
    }
    records = [
        _record(entity, options.get(key, {}), failed.get(key, []), fields, cost_of.get(key), min_confidence, fills)
        for entity in entities.iter_rows()
        for key, fields in ((entity[0], fields_of.get(entity[3]) or fields_of[EntityType(entity[3]).value]),)
    ]
    return pl.DataFrame(records, schema=record_schema())


def _ranked_options(
    candidates: pl.DataFrame, entities: pl.DataFrame, wanted: Sequence[str], order: Sequence[str]
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per row and field, each distinct value with its agreeing sources and boosted confidence, best first."""
    rank = {source: i for i, source in enumerate(order)}
    allowed = _subject_pairs().filter(pl.col("field").is_in(list(wanted)))
    filled = (
        candidates.filter(pl.col("status") == Status.FILLED.value)
        .join(entities.select("row_key", "entity_type"), on="row_key")
        .join(allowed, on=["entity_type", "field"])
        .with_columns(
            value_key=pl.col("value").str.to_lowercase(),
            rank=pl.col("source").replace_strict(rank, default=len(rank), return_dtype=pl.Int32),
            # A provider endorses only the value it chose; its losing candidates are no vote for anything.
            chosen_by_source=pl.col("confidence") == pl.col("confidence").max().over("row_key", "field", "source"),
        )
        .sort(["confidence", "rank"], descending=[True, False])
    )
    filled = _without_implausible(filled, entities)
    groups = (
        filled.group_by("row_key", "field", "value_key", maintain_order=True)
        .agg(
            pl.col("value").first(),
            pl.col("confidence").first().cast(pl.Int32),
            pl.col("source").first(),
            pl.col("rank").first(),
            pl.col("evidence").first(),
            pl.col("fetched_at").first(),
            pl.col("cached").first(),
            agreeing=pl.col("source").filter(pl.col("chosen_by_source")).unique(maintain_order=True),
        )
        .with_columns(
            boosted=pl.min_horizontal(
                pl.lit(100),
                # A length is unsigned: cast before subtracting, or a value nobody chose underflows to 100.
                pl.col("confidence")
                + AGREEMENT_BOOST * (pl.col("agreeing").list.len().cast(pl.Int32) - 1).clip(lower_bound=0),
            )
        )
        .sort(["boosted", "rank"], descending=[True, False])
    )
    # Column lists zipped into dicts: no Python datetime per option (the fetch time is formatted by polars).
    columns = groups.select(*_OPTION_COLUMNS[:-1], fetched_at=_isoformat(pl.col("fetched_at"))).to_dict(as_series=False)
    by_row: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for values in zip(*columns.values(), strict=True):
        row = dict(zip(_OPTION_COLUMNS, values, strict=True))
        by_row.setdefault(row["row_key"], {}).setdefault(row["field"], []).append(row)
    return by_row


_OPTION_COLUMNS = (
    *("row_key", "field", "value", "confidence", "source", "evidence", "cached", "agreeing", "boosted"),
    "fetched_at",  # last: formatted apart
)


def _isoformat(utc: pl.Expr) -> pl.Expr:
    """`datetime.isoformat()` of a UTC timestamp, in bulk: microseconds only when there are any."""
    return (
        pl.when(utc.dt.microsecond() == 0)
        .then(utc.dt.strftime("%Y-%m-%dT%H:%M:%S+00:00"))
        .otherwise(utc.dt.strftime("%Y-%m-%dT%H:%M:%S%.6f+00:00"))
    )


def _without_implausible(filled: pl.DataFrame, entities: pl.DataFrame) -> pl.DataFrame:
    """Drop values the catalog's plausibility bounds refuse for this company, whichever provider gave them
    (an address at a domain that is neither the company's nor a mail service)."""
    emails = filled.filter(pl.col("field") == "company_email")
    if emails.is_empty():
        return filled
    hosts: dict[str, set[str]] = {}
    for key, url, kind in entities.select("row_key", "normalized_url", "entity_type").iter_rows():
        if kind == EntityType.COMPANY_WEBSITE.value and (host := urlsplit(url).hostname):
            hosts.setdefault(key, set()).add(host)
    for key, url in filled.filter(pl.col("field") == "company_website").select("row_key", "value").iter_rows():
        if host := urlsplit(url).hostname:
            hosts.setdefault(key, set()).add(host)
    refused = [
        (key, value)
        for key, value in emails.select("row_key", "value").unique().iter_rows()
        if implausible("company_email", value, hosts.get(key, set()))
    ]
    if not refused:
        return filled
    drop = pl.DataFrame(refused, schema={"row_key": pl.String, "value": pl.String}, orient="row")
    return filled.join(drop.with_columns(field=pl.lit("company_email")), on=["row_key", "field", "value"], how="anti")


def _outcomes_by_row(candidates: pl.DataFrame) -> dict[str, list[Outcome]]:
    """What each provider said about each row, in waterfall order: a failure with its reason, or, for a
    provider that filled other fields, that it found nothing for the rest. An empty field's reason comes from here.
    """
    said = (
        candidates.filter(pl.col("status") != EVIDENCE, pl.col("source") != INPUT_SOURCE)
        .with_columns(
            status=pl.when(pl.col("status") == Status.FILLED.value)
            .then(pl.lit(Status.NOT_FOUND.value))
            .otherwise(pl.col("status")),
            detail=pl.when(pl.col("status") == Status.FILLED.value).then(pl.lit("")).otherwise(pl.col("detail")),
        )
        .unique(["row_key", "source"], keep="first", maintain_order=True)
    )
    outcomes: dict[str, list[Outcome]] = {}
    for key, source, status, detail in said.select("row_key", "source", "status", "detail").iter_rows():
        outcomes.setdefault(key, []).append(Outcome(source, status, detail or ""))
    return outcomes


def _record(
    entity: tuple[str, str, str, str],
    options: dict[str, list[dict[str, Any]]],
    failed: list[Outcome],
    fields: Sequence[str],
    cost: float | None,
    min_confidence: int,
    fills: Mapping[str, Collection[str]] | None,
) -> dict[str, object]:
    """One entity's record: the best option per wanted field (`fields`: those wanted of its kind of entity),
    or the status and reason that explain the gap."""
    record: dict[str, object] = dict(zip(RECORD_KEY_COLUMNS, entity, strict=True)) | _NO_VALUES
    provenance: dict[str, dict[str, object]] = {}
    for name in fields:
        if name in options:
            best, *others = options[name]
            provenance[name] = _chosen(best, others)
            if best["boosted"] >= min_confidence:
                record[name] = best["value"]
            else:  # a candidate, not a fact: shown in the provenance, the cell left empty
                provenance[name] |= {
                    "status": Status.LOW_CONFIDENCE.value,
                    "value": best["value"],
                    "reason": f"{best['source']} found {best['value']!r} at confidence {best['boosted']},"
                    f" below GLAZE_MIN_CONFIDENCE ({min_confidence})",
                }
        else:
            tried = [o for o in failed if fills is None or name in fills.get(o.source, ())]
            provenance[name] = unfilled(tried, NOBODY_FILLS if fills is not None else NOBODY_ANSWERED)
    record["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
    record["cost_usd"] = float(cost or 0.0)
    record["status"] = row_status_of(provenance.values()).value
    return record


_NO_VALUES: dict[str, object] = dict.fromkeys(FIELD_NAMES)
NOBODY_FILLS = "no provider in the waterfall fills this field for this kind of row"
NOBODY_ANSWERED = "no provider said anything about this row"


def unfilled(tried: Sequence[Outcome], silence: str = NOBODY_ANSWERED) -> dict[str, object]:
    """An empty field's provenance: the most useful status, whose reason it is, and what every provider said."""
    best = most_useful(tried)
    if best is None:
        return {"status": Status.NOT_FOUND.value, "source": None, "reason": silence}
    return {
        "status": best.status,
        "source": best.source,
        "reason": f"{best.source}: {best.reason}" if best.reason else f"{best.source} found no value",
        "attempts": {o.source: o.status for o in tried},
    }


def _chosen(best: dict[str, Any], others: list[dict[str, Any]]) -> dict[str, object]:
    return {
        "status": Status.FILLED.value,
        # Not `reason`: that names why a cell is empty (the export shows it beside the status).
        "chosen_because": _why_chosen(best, others),
        "confidence": best["boosted"],
        "source": best["source"],
        "evidence": best["evidence"],
        "fetched_at": best["fetched_at"],  # already ISO 8601 text (`_isoformat`)
        "cached": best["cached"],
        "agreeing_sources": best["agreeing"],
        "conflicts": [{"value": o["value"], "confidence": o["boosted"], "source": o["source"]} for o in others],
    }


def _why_chosen(best: dict[str, Any], others: list[dict[str, Any]]) -> str:
    """One sentence on why this value won, for the export's reason column and the audit trail."""
    agreeing = [s for s in best["agreeing"] if s != best["source"]]
    reason = f"{best['source']} at confidence {best['boosted']}"
    if agreeing:
        reason += f", confirmed by {', '.join(agreeing)}"
    if others:
        runner_up = others[0]
        reason += f"; beat {runner_up['value']!r} from {runner_up['source']} ({runner_up['boosted']})"
        if len(others) > 1:
            reason += f" and {len(others) - 1} more"
    return reason


def audit_trail(records: pl.DataFrame, candidates: pl.DataFrame) -> pl.DataFrame:
    """Every value a provider found, the one that landed marked `chosen`, and for the others why they lost.

    `records` are the checked records (a value validation cleared is no longer chosen); `detail` keeps
    what the provider itself said about the value (an extractor's reason for ranking it lower).
    """
    found = candidates.filter(pl.col("status") == Status.FILLED.value)
    kept = _kept_values(records, found["field"].unique().to_list())
    joined = found.join(kept, on=["row_key", "field"], how="left")
    value, kept_value = pl.col("value"), pl.col("kept_value")
    is_kept = (pl.col("field_status") == Status.FILLED.value) & (pl.col("source") == pl.col("kept_source"))
    is_kept = is_kept & (value == kept_value)
    chosen = is_kept & (is_kept.cast(pl.Int32).cum_sum().over("row_key", "field") == 1)
    lost_to = pl.format("lost to '{}' from {} (confidence {})", kept_value, pl.col("kept_source"), pl.col("kept_conf"))
    reason = (
        pl.when(chosen)
        .then(pl.col("kept_reason"))
        .when(pl.col("field_status").is_null())
        .then(pl.lit("not wanted by this table"))
        .when((pl.col("field_status") == Status.REJECTED.value) & (value == pl.col("rejected_value")))
        .then(pl.lit("chosen, then rejected by validation (see glaze.rejects)"))
        .when(pl.col("field_status") == Status.REJECTED.value)
        .then(pl.lit("lost to a value validation then rejected"))
        .when((pl.col("field_status") == Status.LOW_CONFIDENCE.value) & (value == kept_value))
        .then(pl.col("kept_reason"))
        .when(value.str.to_lowercase() == kept_value.str.to_lowercase())
        .then(pl.format("agrees with the kept value, which {} supplied", pl.col("kept_source")))
        .otherwise(lost_to)
    )
    return joined.with_columns(chosen=chosen.fill_null(False), reason=reason).select(AUDIT_COLUMNS)


def _kept_values(records: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """Per (row, field) of `fields` in a record's provenance: its status, and the value, source and confidence
    that landed."""
    schema = {
        "row_key": pl.String(),
        "field": pl.String(),
        "field_status": pl.String(),
        "kept_value": pl.String(),
        "kept_source": pl.String(),
        "kept_conf": pl.Int64(),
        "kept_reason": pl.String(),
        "rejected_value": pl.String(),
    }
    entry = pl.Struct(
        {name: pl.Int64 if name == "confidence" else pl.String for name in ("status", "source", "confidence", "reason")}
        | {"rejected_value": pl.String, "value": pl.String, "chosen_because": pl.String}
    )
    present = [name for name in FIELD_NAMES if name in fields]
    decoded = records.select(
        "row_key", *present, provenance=pl.col("provenance").str.json_decode(pl.Struct({n: entry for n in present}))
    )
    frames = [
        decoded.select(
            "row_key",
            field=pl.lit(name),
            field_status=pl.col("provenance").struct.field(name).struct.field("status"),
            # A value below GLAZE_MIN_CONFIDENCE stays out of the cell; the provenance names it.
            kept_value=pl.coalesce(pl.col(name), pl.col("provenance").struct.field(name).struct.field("value")),
            kept_source=pl.col("provenance").struct.field(name).struct.field("source"),
            kept_conf=pl.col("provenance").struct.field(name).struct.field("confidence"),
            kept_reason=pl.coalesce(  # a value under the threshold has both: its reason says why it is no fact
                pl.col("provenance").struct.field(name).struct.field("reason"),
                pl.col("provenance").struct.field(name).struct.field("chosen_because"),
            ),
            rejected_value=pl.col("provenance").struct.field(name).struct.field("rejected_value"),
        ).filter(pl.col("field_status").is_not_null())
        for name in present
    ]
    return pl.concat(frames).cast(pl.Schema(schema)) if frames else pl.DataFrame(schema=schema)


def carry_over(records: pl.DataFrame, landed: pl.DataFrame, fields: Sequence[str]) -> pl.DataFrame:
    """Keep what landed before for `fields`, cells and provenance, when a run asked only for other fields."""
    if not fields or landed.is_empty():
        return records
    before = {row["row_key"]: row for row in landed.iter_rows(named=True)}
    rows = records.to_dicts()
    for row in rows:
        old = before.get(row["row_key"])
        if old is None:
            continue
        provenance, old_provenance = json.loads(row["provenance"]), json.loads(old["provenance"])
        for name in fields:
            row[name] = old[name]
            if name in old_provenance:
                provenance[name] = old_provenance[name]
        row["provenance"] = json.dumps(provenance, sort_keys=True, default=str)
        row["status"] = row_status_of(provenance.values()).value
    return pl.DataFrame(rows, schema=records.schema)
