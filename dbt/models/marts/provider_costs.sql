with

calls as (

    select * from {{ ref('stg_provider_calls') }}

),

stages as (

    select * from {{ ref('stg_provider_stages') }}

),

ledger_per_day as (

    -- money comes from the ledger only, so every figure here equals it
    select
        table_id,
        provider,
        cast(called_at at time zone 'UTC' as date) as day,
        count(*) filter (where cost_usd > 0) as paid_calls,
        sum(cost_usd) as cost_usd
    from calls
    group by table_id, provider, day

),

stages_per_day as (

    select
        table_id,
        provider,
        cast(finished_at at time zone 'UTC' as date) as day,
        count(*) as runs,
        sum(rows_with_gaps) as rows_asked,
        sum(calls) as calls,
        sum(cache_hits) as cache_hits,
        sum(ledger_hits) as ledger_hits
    from stages
    group by table_id, provider, day

),

final as (

    select
        table_id,
        provider,
        day,
        coalesce(stages_per_day.runs, 0) as runs,
        coalesce(stages_per_day.rows_asked, 0) as rows_asked,
        coalesce(stages_per_day.calls, 0) as calls,
        coalesce(stages_per_day.cache_hits, 0) as cache_hits,
        coalesce(stages_per_day.ledger_hits, 0) as ledger_hits,
        coalesce(ledger_per_day.paid_calls, 0) as paid_calls,
        coalesce(ledger_per_day.cost_usd, 0) as cost_usd

    from stages_per_day
    full outer join ledger_per_day using (table_id, provider, day)

)

select * from final
