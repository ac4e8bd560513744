{#- An incremental staging model reads only the raw rows exported after the ones it holds, so two
    changes to a raw export would go unseen without this test: a file that arrives late, with
    export times older than the ones held (its rows would never be read: a change lost), and a
    file deleted after it was read (its rows would stay). Fails with one row per export time
    found on one side only: `raw_export_not_read` (rebuild with `--full-refresh`, or set var
    incremental_lookback_hours to cover how late files arrive) or `held_but_gone_from_raw`
    (rebuild with `--full-refresh`). Export times are compared as staging reads them (to_utc);
    the ones after as_of and the rows staging quarantines (listed in rejected_inputs) are not
    expected in staging. -#}
{% test holds_every_raw_export(model, source_name, table_name) %}

with

-- one value per export file before the conversion, which is what costs
raw_exports as (
    select distinct {{ to_utc('_exported_at', 'UTC') }} as exported_at
    from (select distinct _exported_at from {{ source(source_name, table_name) }}) as raw_export_times
),

held as (
    select distinct exported_at
    from {{ model }}
    where exported_at is not null
),

quarantined as (
    select distinct exported_at
    from {{ ref('rejected_inputs') }}
    where
        source_system = '{{ source_name }}'
        and source_table = '{{ table_name }}'
        and action = 'row_quarantined'
        and exported_at is not null
),

raw_export_not_read as (
    select
        'raw_export_not_read' as problem,
        raw_exports.exported_at
    from raw_exports
    where
        raw_exports.exported_at is not null
        and not {{ exported_in_future('raw_exports.exported_at') }}
        and not exists (select 1 from held where held.exported_at = raw_exports.exported_at)
        and not exists (select 1 from quarantined where quarantined.exported_at = raw_exports.exported_at)
),

held_but_gone_from_raw as (
    select
        'held_but_gone_from_raw' as problem,
        held.exported_at
    from held
    where not exists (select 1 from raw_exports where raw_exports.exported_at = held.exported_at)
)

select * from raw_export_not_read
union all
select * from held_but_gone_from_raw

{% endtest %}
