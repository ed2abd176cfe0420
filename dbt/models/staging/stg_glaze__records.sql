with source as (
    select * from {{ source('glaze', 'records') }}
),

renamed as (
    select
        table_id,
        row_key,
        entity_type,
        normalized_url,
        company_name,
        company_description,
        company_website,
        company_city,
        company_country,
        cast(company_employee_count as integer) as company_employee_count,
        company_industry,
        cast(company_founded_year as integer) as company_founded_year,
        company_linkedin,
        company_twitter,
        company_email,
        company_phone,
        person_name,
        person_title,
        person_company,
        person_location,
        person_linkedin,
        provenance,
        cost_usd,
        status,
        enriched_at
    from source
)

select * from renamed
