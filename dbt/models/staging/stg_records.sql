with

source as (

    select * from {{ source('glaze', 'records') }}

),

renamed as (

    select

        ---------- keys
        table_id,
        row_key,
        input_url,
        normalized_url,
        entity_type,

        ---------- one column per catalog field; whole numbers typed, everything else text as normalised
        {% for field in var('company_fields') + var('person_fields') -%}
        {% if field in var('integer_fields') -%}
        cast({{ field }} as integer) as {{ field }},
        {% else -%}
        {{ field }},
        {% endif -%}
        {% endfor %}
        ---------- provenance, cost, status
        provenance,
        cost_usd,
        status,
        enriched_at

    from source

)

select * from renamed
