{#- rejected_inputs' incremental read (macros/incremental.sql for staging's). rejected_inputs holds
    only rejections, so its own rows cannot tell how far it has read (with none it would read
    everything again). int_rejected_inputs__checked_through keeps, per raw table, the export time
    through which rejected_inputs has evaluated every raw row: the latest export held by that
    table's staging model when rejected_inputs last ran. rejected_inputs runs after staging, so
    it has read every raw row staging read, also rows written into a raw table while the build
    runs. An incremental build deletes and reads again, per raw table, the rows exported after
    that mark less var incremental_lookback_hours (a late file is then read as staging reads it),
    and those with a NULL export time. A row quarantined as exported in the future always lies
    after the mark (staging holds nothing exported after as_of), so it is evaluated again on
    every build and its rejection disappears once as_of passes it. A missing mark (first build,
    the companion rebuilt without rejected_inputs) reads the whole table: a stale mark only costs
    reading more. Spark rebuilds rejected_inputs in full (state_materialization()). -#}

{#- The raw tables rejected_inputs reads, each with the staging model holding its rows. -#}
{% macro rejected_inputs_raw_tables() -%}
    {{ return([('store', 'customers'), ('store', 'orders'), ('store', 'order_lines'), ('store', 'refunds'),
               ('subscriptions', 'subscription_events'), ('loyalty', 'loyalty_accounts'),
               ('returns', 'returns'), ('reviews', 'reviews'),
               ('back_in_stock', 'back_in_stock_requests'), ('web_events', 'web_events')]) }}
{%- endmacro %}

{#- {'source.table': start literal} for the raw tables read from a start (the mark less the
    lookback) in an incremental build; a table not in it is read whole. -#}
{% macro rejected_inputs_tail_starts() -%}
    {{ return(companion_mark_starts('int_rejected_inputs__checked_through', 'checked_through')) }}
{%- endmacro %}

{#- The condition on exported_at (naive UTC) that keeps the part of source.table read again. -#}
{% macro rejected_inputs_in_tail(starts, source_name, table_name, exported_at='exported_at') -%}
    {{- exported_after(exported_at, starts.get(source_name ~ '.' ~ table_name)) -}}
{%- endmacro %}

{#- A cheap necessary condition on the raw export column, so DuckDB skips Parquet row groups
    (raw_exported_in_tail in macros/incremental.sql). -#}
{% macro rejected_inputs_raw_in_tail(starts, source_name, table_name) -%}
    {%- set start = starts.get(source_name ~ '.' ~ table_name) -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ adapter.dispatch('raw_exported_in_tail', 'retention')('_exported_at', start) }}
    {%- endif -%}
{%- endmacro %}

{#- pre_hook of rejected_inputs: delete the held rejections of the part it is about to read again. -#}
{% macro delete_rejected_inputs_tail() -%}
    {%- if incremental_build() -%}
    {%- set starts = rejected_inputs_tail_starts() -%}
    delete from {{ this }}
    where
        {%- for source_name, table_name in rejected_inputs_raw_tables() %}
        {{ 'or ' if not loop.first }}(source_system = '{{ source_name }}' and source_table = '{{ table_name }}'
            and {{ rejected_inputs_in_tail(starts, source_name, table_name) }})
        {%- endfor %}
    {%- endif -%}
{%- endmacro %}
