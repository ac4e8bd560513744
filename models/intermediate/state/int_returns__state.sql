-- One row per person with returns: whether any return is still open (requested, approved or
-- received) and the latest return's status. Each return's status is the one with the latest
-- updated_at, so a late export of an older status never reopens a closed return.

with

returns as (select * from {{ ref('stg_returns__returns') }}),

source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = 'returns'
),

returns_latest as (
    select distinct
        source_records.customer_id,
        returns.return_id,
        {{ latest_known(
            'returns.return_status', 'returns.return_id', 'returns.updated_at desc, returns.exported_at desc',
        ) }}
            as return_status,
        {{ latest_known_at(
            'returns.return_status',
            'returns.updated_at',
            'returns.return_id',
            'returns.updated_at desc, returns.exported_at desc',
        ) }}
            as return_status_updated_at,
        min(returns.updated_at) over (partition by returns.return_id) as opened_at,
        max(returns.exported_at) over (partition by returns.return_id) as last_exported_at
    from returns
    inner join source_records
        on returns.return_id = source_records.source_record_id
    where source_records.customer_id is not null
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
        customer_id,
        return_status,
        return_status_updated_at,
        open_return_count > 0 as has_open_return,
        open_return_opened_at,
        returns_last_exported_at
    from returns_ranked
    where return_rank = 1
)

select * from final
