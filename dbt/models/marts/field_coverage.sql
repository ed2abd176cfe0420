with

cells as (

    select * from {{ ref('int_record_fields') }}

),

filled_per_source as (

    select
        table_id,
        field,
        source,
        count(*) as rows_filled
    from cells
    where status = 'filled'
    group by table_id, field, source

),

unfilled_per_status as (

    select
        table_id,
        field,
        status,
        count(*) as rows_unfilled
    from cells
    where status <> 'filled'
    group by table_id, field, status

),

by_source as (

    select
        table_id,
        field,
        jsonb_object_agg(source, rows_filled order by source) as filled_by_source
    from filled_per_source
    group by table_id, field

),

by_status as (

    select
        table_id,
        field,
        jsonb_object_agg(status, rows_unfilled order by status) as unfilled_by_status
    from unfilled_per_status
    group by table_id, field

),

totals as (

    select
        table_id,
        field,
        count(*) as rows_wanted,
        count(*) filter (where status = 'filled') as rows_filled,
        round(avg(confidence) filter (where status = 'filled'), 1) as mean_confidence
    from cells
    group by table_id, field

),

final as (

    select
        totals.table_id,
        totals.field,
        totals.rows_wanted,
        totals.rows_filled,
        round(cast(totals.rows_filled as numeric) / totals.rows_wanted, 4) as fill_rate,
        coalesce(by_source.filled_by_source, '{}'::jsonb) as filled_by_source,
        totals.mean_confidence,
        coalesce(by_status.unfilled_by_status, '{}'::jsonb) as unfilled_by_status

    from totals
    left join by_source using (table_id, field)
    left join by_status using (table_id, field)

)

select * from final
