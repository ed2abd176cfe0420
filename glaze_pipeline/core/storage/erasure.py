"""The one place that removes data from Postgres: a whole table (`glaze delete`), or one entity from every
table (`glaze purge`, a person's right to erasure).

The paid-call ledger is money truth, so its rows stay: what was paid, when, by which run, with what
outcome. What a row stored about the entity (the answer, the URL, the row key) is blanked, and its
request hash becomes `erased:<random>`, so no lookup ever finds that answer again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import psycopg

ERASED = "erased:"  # prefix of the request hash of a ledger row whose answer was blanked


@dataclass(frozen=True)
class KnownEntity:
    """An entity a table holds, as the cache and the ledger know it."""

    row_key: str
    normalized_url: str
    entity_type: str


def entities_only_in(conn: psycopg.Connection, table_id: str) -> list[KnownEntity]:
    """The table's entities no other table holds: their cached and paid answers go with the table."""
    rows = conn.execute(
        """SELECT DISTINCT i.row_key, i.normalized_url, i.entity_type FROM glaze.input_rows i
           WHERE i.table_id = %s AND i.row_key IS NOT NULL
             AND NOT EXISTS (SELECT 1 FROM glaze.input_rows o WHERE o.row_key = i.row_key AND o.table_id <> i.table_id)
           ORDER BY 1""",
        (table_id,),
    ).fetchall()
    return [KnownEntity(*row) for row in rows]


def paid_requests(conn: psycopg.Connection, row_keys: Sequence[str]) -> list[tuple[str, str, str]]:
    """(provider, provider_version, request_hash) of every paid answer about these rows: their cache keys."""
    return conn.execute(
        """SELECT DISTINCT provider, coalesce(provider_version, ''), request_hash FROM glaze.provider_calls
           WHERE row_key = ANY(%s)""",
        (list(row_keys),),
    ).fetchall()


def delete_table(conn: psycopg.Connection, table_id: str, only_here: Sequence[str]) -> dict[str, int]:
    """Remove a table's rows everywhere; `only_here` are row keys no other table holds (their answers go too)."""
    removed = {}
    for name in ("field_values", "rejects", "records", "input_rows", "provider_stages"):
        removed[f"glaze.{name}"] = _delete(conn, name, "table_id = %s", (table_id,))
    removed["glaze.provider_calls answers blanked"] = _blank_ledger(conn, only_here)
    removed["glaze.provider_calls rows detached (cost kept)"] = conn.execute(
        "UPDATE glaze.provider_calls SET table_id = NULL WHERE table_id = %s", (table_id,)
    ).rowcount
    removed["glaze.tables"] = _delete(conn, "tables", "table_id = %s", (table_id,))
    return removed


def purge_entity(conn: psycopg.Connection, row_key: str, urls: Sequence[str]) -> dict[str, int]:
    """Remove one entity from every table; the tables' row counts shrink to match."""
    removed = {}
    for name in ("field_values", "records"):
        removed[f"glaze.{name}"] = _delete(conn, name, "row_key = %s", (row_key,))
    gone = conn.execute(
        """DELETE FROM glaze.input_rows WHERE row_key = %s OR input_url = ANY(%s)
           RETURNING table_id, row_number, outcome""",
        (row_key, list(urls)),
    ).fetchall()
    removed["glaze.input_rows"] = len(gone)
    removed["glaze.rejects"] = conn.execute(
        """DELETE FROM glaze.rejects r WHERE r.row_key = %s
              OR (r.stage = 'upload' AND (r.table_id, r.row_number) IN
                  (SELECT * FROM unnest(%s::text[], %s::int[])))""",
        (row_key, [t for t, _, _ in gone], [n for _, n, _ in gone]),
    ).rowcount
    _shrink_counts(conn, gone)
    # A single-record request keeps its key, cost and times (a key's daily cap sums them); not whom it was about.
    removed["glaze.requests erased (cost kept)"] = conn.execute(
        """UPDATE glaze.requests SET input_url = 'erased', normalized_url = NULL, row_key = NULL, result = NULL,
               error = NULL, body_hash = NULL
           WHERE row_key = %s OR input_url = ANY(%s) OR normalized_url = ANY(%s)""",
        (row_key, list(urls), list(urls)),
    ).rowcount
    removed["glaze.provider_calls answers blanked"] = _blank_ledger(conn, [row_key], urls)
    return removed


def _delete(conn: psycopg.Connection, table: str, where: str, params: tuple[object, ...]) -> int:
    # `table` and `where` are constants of this module, never user text.
    return conn.execute(f"DELETE FROM glaze.{table} WHERE {where}", params).rowcount


def _blank_ledger(conn: psycopg.Connection, row_keys: Sequence[str], urls: Sequence[str] = ()) -> int:
    """Keep what each call cost; forget what it answered and whom it was about."""
    return conn.execute(
        f"""UPDATE glaze.provider_calls
            SET response = NULL, entity = NULL, row_key = NULL, request_hash = '{ERASED}' || gen_random_uuid()
            WHERE row_key = ANY(%s) OR entity = ANY(%s)""",
        (list(row_keys), list(urls)),
    ).rowcount


def _shrink_counts(conn: psycopg.Connection, gone: Sequence[tuple[str, int, str]]) -> None:
    """rows_in = accepted + rejected + duplicates stays true after rows are erased."""
    per_table: dict[str, dict[str, int]] = {}
    for table_id, _, outcome in gone:
        per_table.setdefault(table_id, {"accepted": 0, "rejected": 0, "duplicate": 0})[outcome] += 1
    for table_id, n in per_table.items():
        conn.execute(
            """UPDATE glaze.tables SET rows_in = rows_in - %s, accepted = accepted - %s, rejected = rejected - %s,
                   duplicates = duplicates - %s, updated_at = now() WHERE table_id = %s""",
            (sum(n.values()), n["accepted"], n["rejected"], n["duplicate"], table_id),
        )
