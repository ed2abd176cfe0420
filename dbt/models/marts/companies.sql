-- Every enriched company across tables, the most recently enriched version of each website.
select distinct on (normalized_url)
    normalized_url,
    company_name,
    company_city,
    company_country,
    company_employee_count,
    company_founded_year,
    company_linkedin,
    company_email,
    company_phone,
    enriched_at
from {{ ref('stg_glaze__records') }}
where entity_type in ('company_website', 'linkedin_company')
order by normalized_url, enriched_at desc
