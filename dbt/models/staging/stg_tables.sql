with

source as (

    select * from {{ source('glaze', 'tables') }}

),

renamed as (

    select

        ---------- ids
        table_id,
        name as table_name,
        source_file,
        url_column,

        ---------- what the user asked for
        wanted_fields,
        hint_fields,

        ---------- counts: rows_in = accepted + rejected + duplicates
        rows_in,
        accepted,
        rejected,
        duplicates,

        ---------- state
        status,
        last_run_id,

        ---------- timestamps
        created_at as uploaded_at,
        updated_at

    from source

)

select * from renamed
