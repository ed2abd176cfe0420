with

source as (

    select * from {{ source('glaze', 'field_values') }}

),

renamed as (

    select

        ---------- keys
        table_id,
        row_key,
        field,
        source as provider,

        ---------- the value and how sure the provider was
        value,
        confidence,
        evidence,

        ---------- what it cost, and whether the answer came from the cache
        cost_usd,
        cached as is_cached,

        ---------- timestamps
        fetched_at

    from source

)

select * from renamed
