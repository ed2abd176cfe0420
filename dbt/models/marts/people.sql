with

records as (

    select * from {{ ref('stg_records') }}
    where entity_type = 'linkedin_person'

),

cells as (

    select * from {{ ref('int_record_fields') }}
    where entity_type = 'linkedin_person'

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
        {{ pivot_best_values(var('person_fields'), 'person_') }}
    from best_values
    group by normalized_url

),

final as (

    select * from entities
    left join pivoted using (normalized_url)

)

select * from final
