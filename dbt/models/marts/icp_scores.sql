with

companies as (

    select * from {{ ref('companies') }}

),

criteria as (

    -- the seed's text values, typed per criterion (CASE keeps each cast to the rows it fits)
    select
        criterion,
        value,
        points,
        label,
        case when criterion = 'employees' then cast(substring(value from '^[0-9]+') as integer) end as employees_low,
        case when criterion = 'employees' then cast(substring(value from '-([0-9]+)$') as integer) end as employees_high,
        case when criterion = 'founded_after' then cast(value as integer) end as founded_after,
        case when criterion = 'has_linkedin' then cast(value as boolean) end as has_linkedin

    from {{ ref('icp_criteria') }}

),

matches as (

    select
        companies.normalized_url,
        criteria.criterion,
        criteria.points,
        criteria.label

    from companies
    inner join criteria on
        case criteria.criterion
            when 'industry' then companies.industry ilike criteria.value
            when 'country' then companies.country = upper(criteria.value)
            when 'founded_after' then companies.founded_year > criteria.founded_after
            when 'has_linkedin' then (companies.linkedin is not null) = criteria.has_linkedin
            -- the company's size must lie inside the band; an open band (1001+) has no top
            when 'employees' then companies.employees_low >= criteria.employees_low
                and (criteria.employees_high is null or companies.employees_high <= criteria.employees_high)
            else false
        end

),

best_per_criterion as (

    -- two industry patterns that both match count once, with the higher points
    select distinct on (normalized_url, criterion) *
    from matches
    order by normalized_url, criterion, points desc

),

scored as (

    select
        normalized_url,
        sum(points) as points,
        string_agg(
            case when points < 0 then '-' else '+' end || abs(points) || ' ' || label,
            '; ' order by points desc, criterion
        ) as reasons

    from best_per_criterion
    group by normalized_url

),

unknown as (

    -- criteria the profile uses that a company has no fact for: what more enrichment could change
    select
        companies.normalized_url,
        string_agg(used.criterion, ', ' order by used.criterion) as unknown_criteria

    from companies
    cross join (select distinct criterion from criteria) as used
    where
        case used.criterion
            when 'industry' then companies.industry is null
            when 'country' then companies.country is null
            when 'founded_after' then companies.founded_year is null
            when 'employees' then companies.employees_low is null
            else false
        end
    group by companies.normalized_url

),

final as (

    select
        companies.normalized_url,
        companies.name,
        greatest(0, least(100, coalesce(scored.points, 0))) as icp_score,
        coalesce(scored.reasons, '') as reasons,
        unknown.unknown_criteria

    from companies
    left join scored on companies.normalized_url = scored.normalized_url
    left join unknown on companies.normalized_url = unknown.normalized_url

)

select * from final
