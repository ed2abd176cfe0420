{#- Shared by companies and people: one entity per normalised URL across every uploaded table. -#}

{#- Per entity and field, the filled value with the highest confidence; among equals the most recently
    enriched one. `cells` is a relation shaped like int_record_fields. -#}
{% macro best_values(cells) -%}
    select distinct on (normalized_url, field)
        normalized_url,
        field,
        value,
        confidence,
        source
    from {{ cells }}
    where status = 'filled'
    order by normalized_url, field, confidence desc, enriched_at desc
{%- endmacro %}

{#- One column per field (without its subject prefix: company_industry → industry), typed as the catalog says,
    with its confidence and source beside it. Selects from a best_values() relation grouped by normalized_url. -#}
{% macro pivot_best_values(fields, prefix) -%}
    {%- for field in fields %}
        {%- set column = field[prefix | length:] if field.startswith(prefix) else field %}
        {%- set value = "max(value) filter (where field = '" ~ field ~ "')" %}
        {%- if field in var('integer_fields') %}
        cast({{ value }} as integer) as {{ column }},
        {%- else %}
        {{ value }} as {{ column }},
        {%- endif %}
        max(confidence) filter (where field = '{{ field }}') as {{ column }}_confidence,
        max(source) filter (where field = '{{ field }}') as {{ column }}_source{{ "," if not loop.last }}
    {%- endfor %}
{%- endmacro %}

{#- Per entity: the tables it appears in, what it cost over all of them, and when it was enriched. -#}
{% macro entity_summary(records) -%}
    select
        normalized_url,
        min(entity_type) as entity_type,
        string_agg(distinct table_id, ', ' order by table_id) as table_ids,
        sum(cost_usd) as cost_usd,
        min(enriched_at) as first_enriched_at,
        max(enriched_at) as last_enriched_at
    from {{ records }}
    group by normalized_url
{%- endmacro %}
