{#- One row per record and wanted field: the cell's value with the status, confidence and source that the
    record's provenance gives it. companies, people and field_coverage all start here. -#}
with

records as (

    select * from {{ ref('stg_records') }}

),

cells as (

    select
        records.table_id,
        records.row_key,
        records.normalized_url,
        records.entity_type,
        records.enriched_at,
        cell.key as field,
        -- the typed column of the same name, as text
        to_jsonb(records) ->> cell.key as value,
        cell.value ->> 'status' as status,
        cast(cell.value ->> 'confidence' as integer) as confidence,
        cell.value ->> 'source' as source

    from records
    cross join lateral jsonb_each(records.provenance) as cell

)

select * from cells
