with

source as (

    select * from {{ source('glaze', 'provider_stages') }}

),

renamed as (

    select

        ---------- ids
        run_id,
        table_id,
        provider,

        ---------- what the stage did
        rows_with_gaps,
        cache_hits,
        ledger_hits,
        calls,
        paid_calls,
        cost_usd,

        ---------- timestamps
        finished_at

    from source

)

select * from renamed
