with

source as (

    select * from {{ source('glaze', 'provider_calls') }}

),

renamed as (

    select

        ---------- ids
        provider,
        provider_version,
        request_hash,
        run_id,
        table_id,
        row_key,
        entity,

        ---------- outcome and money
        status,
        cost_usd,

        ---------- timestamps
        at as called_at

    from source

)

select * from renamed
