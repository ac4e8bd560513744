-- One row per person with returns: whether any return is still open (requested, approved or
-- received) and the latest return's status. Each return's status is the one with the latest
-- updated_at, so a late export of an older status never reopens a closed return.
-- Incremental (macros/incremental.sql): a build recomputes the people with a returns export
-- newer than the latest held, or whose matched returns changed; a full rebuild on Spark.
{{ config(
    materialized=state_materialization(),
    incremental_strategy=state_incremental_strategy(),
    unique_key='customer_id',
    on_schema_change='fail',
    post_hook="{{ delete_people_without_records('returns') }}",
) }}

with

returns as (select * from {{ ref('stg_returns__returns') }}),

{{ source_records_checksummed('returns') }},

returns_matched as (
    select
        source_records.customer_id,
        returns.return_id,
        returns.return_status,
        returns.updated_at,
        returns.exported_at
    from returns
    inner join source_records
        on returns.return_id = source_records.source_record_id
),

returns_in_scope as (
    select * from returns_matched
    {%- if is_incremental() %}
    where customer_id in ({{ people_to_refresh('returns_matched', 'records_checksummed', 'returns_last_exported_at') }})
    {%- endif %}
),

returns_latest as (
    select distinct
        customer_id,
        return_id,
        {{ latest_known('return_status', 'return_id', 'updated_at desc, exported_at desc') }} as return_status,
        {{ latest_known_at('return_status', 'updated_at', 'return_id', 'updated_at desc, exported_at desc') }}
            as return_status_updated_at,
        min(updated_at) over (partition by return_id) as opened_at,
        max(exported_at) over (partition by return_id) as last_exported_at
    from returns_in_scope
),

returns_ranked as (
    select
        returns_latest.*,
        row_number()
            over (
                partition by returns_latest.customer_id
                order by returns_latest.return_status_updated_at desc, returns_latest.return_id asc
            )
            as return_rank,
        max(case when returns_latest.return_status in ('requested', 'approved', 'received') then 1 else 0 end)
            over (partition by returns_latest.customer_id) as open_return_count,
        min(
            case
                when returns_latest.return_status in ('requested', 'approved', 'received') then returns_latest.opened_at
            end
        )
            over (partition by returns_latest.customer_id) as open_return_opened_at,
        max(returns_latest.last_exported_at) over (partition by returns_latest.customer_id) as returns_last_exported_at
    from returns_latest
),

final as (
    select
        returns_ranked.customer_id,
        returns_ranked.return_status,
        returns_ranked.return_status_updated_at,
        returns_ranked.open_return_count > 0 as has_open_return,
        returns_ranked.open_return_opened_at,
        returns_ranked.returns_last_exported_at,
        records_checksummed.source_records_checksum
    from returns_ranked
    inner join records_checksummed
        on returns_ranked.customer_id = records_checksummed.customer_id
    where returns_ranked.return_rank = 1
)

select * from final
