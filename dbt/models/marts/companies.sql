with

records as (

    select * from {{ ref('stg_records') }}
    where entity_type in ('company_website', 'linkedin_company')

),

cells as (

    select * from {{ ref('int_record_fields') }}
    where entity_type in ('company_website', 'linkedin_company')

),

entities as (

    {{ entity_summary('records') }}

),

best_values as (

    {{ best_values('cells') }}

),

pivoted as (

    select
        normalized_url,
        {{ pivot_best_values(var('company_fields'), 'company_') }}
    from best_values
    group by normalized_url

),

final as (

    select
        *,
        -- size as bounds: a stated head count is both, a band (51-200, 10001+) gives its ends, open bands no top
        coalesce(employee_count, cast(substring(employee_range from '^[0-9]+') as integer)) as employees_low,
        coalesce(employee_count, cast(substring(employee_range from '-([0-9]+)$') as integer)) as employees_high

    from entities
    left join pivoted using (normalized_url)

)

select * from final
