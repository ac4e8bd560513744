{#- A state column is fresh when its newest value is at most `max_age_hours` older than as_of(),
    and no value lies in the future (a future timestamp means a time-zone or clock error).
    Fails with one row per problem. -#}
{% test state_freshness(model, column_name, max_age_hours, future_tolerance_hours=1) %}

with

newest as (
    select max({{ column_name }}) as newest_at
    from {{ model }}
),

stale as (
    select 'stale' as problem, newest_at as seen_at
    from newest
    where newest_at is null
        or newest_at < {{ dbt.dateadd('hour', -1 * max_age_hours, as_of()) }}
),

future as (
    select 'future' as problem, {{ column_name }} as seen_at
    from {{ model }}
    where {{ column_name }} > {{ dbt.dateadd('hour', future_tolerance_hours, as_of()) }}
)

select * from stale
union all
select * from future

{% endtest %}
