{#- Incremental state models (README, "The warehouse"). Each build recomputes only the rows
    whose inputs changed and merges them in (delete+insert on the model's unique key):
    - rows with an export newer than the model's high-water mark (the latest export time it
      already holds, less var incremental_lookback_hours), so a late export of an older change
      is picked up by its export time and latest-timestamp-wins decides as in a full build;
    - people whose set of matched source records changed (identity matched a record to someone
      else, or to someone at last), found by comparing an order-independent checksum of the
      record ids with the one stored on the row; people left with no record are deleted.
    Engines that cannot delete rows from a table (Spark on plain parquet) rebuild the model in
    full on every run instead (same rows). -#}

{#- 'incremental' where rows can be deleted and merged, 'table' (a full rebuild) elsewhere. -#}
{% macro state_materialization() -%}
    {{ return(adapter.dispatch('state_materialization', 'retention')()) }}
{%- endmacro %}

{% macro default__state_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{#- Spark on parquet has no DELETE or MERGE; insert_overwrite replaces whole partitions, and a
    person's rows have no partition of their own, so the model is rebuilt in full. -#}
{% macro spark__state_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{#- How changed rows replace the held ones: delete the held rows of each key, insert the new. -#}
{% macro state_incremental_strategy() -%}
    {{ return(adapter.dispatch('state_incremental_strategy', 'retention')()) }}
{%- endmacro %}

{% macro default__state_incremental_strategy() -%}
    {{ return('delete+insert') }}
{%- endmacro %}

{#- The export time from which rows count as new: the latest one the model holds, less var
    incremental_lookback_hours (raise it when a source can deliver a file whose export times
    are older than ones already loaded). -#}
{% macro high_water_mark(column) -%}
    (select {{ dbt.dateadd('hour', -1 * (var('incremental_lookback_hours', 0) | int), 'max(' ~ column ~ ')') }}
    from {{ this }})
{%- endmacro %}

{#- An order-independent 64-bit checksum of a set of distinct text ids (an aggregate). -#}
{% macro ids_checksum(column) -%}
    {{ adapter.dispatch('ids_checksum', 'retention')(column) }}
{%- endmacro %}

{% macro default__ids_checksum(column) -%}
    {{ exceptions.raise_compiler_error("ids_checksum() has no implementation for adapter '"
                                       ~ adapter.type() ~ "': add one in macros/incremental.sql") }}
{%- endmacro %}

{#- hash() is 64-bit unsigned; one bit less makes it a BIGINT as on the other engines. -#}
{% macro duckdb__ids_checksum(column) -%}
    cast(bit_xor(hash({{ column }})) >> 1 as bigint)
{%- endmacro %}

{% macro postgres__ids_checksum(column) -%}
    bit_xor(hashtextextended({{ column }}, 0))
{%- endmacro %}

{% macro spark__ids_checksum(column) -%}
    bit_xor(xxhash64({{ column }}))
{%- endmacro %}

{#- The two CTEs every per-person state model starts from: `source_records`, the records of
    `source_system` matched to a person (int_identity__source_records), and
    `records_checksummed`, each person's checksum of their record ids (people_to_refresh). -#}
{% macro source_records_checksummed(source_system) -%}
source_records as (
    select * from {{ ref('int_identity__source_records') }}
    where source_system = '{{ source_system }}' and customer_id is not null
),

records_checksummed as (
    select
        customer_id,
        {{ ids_checksum('source_record_id') }} as source_records_checksum
    from source_records
    group by customer_id
)
{%- endmacro %}

{#- The people a per-person state model recomputes in an incremental build: those with a row of
    `matched` (customer_id, exported_at) exported after the high-water mark of `last_exported`,
    and those whose record checksum (`checksummed`: customer_id, source_records_checksum)
    differs from the held one. -#}
{% macro people_to_refresh(matched, checksummed, last_exported) -%}
    select {{ matched }}.customer_id
    from {{ matched }}
    where {{ matched }}.exported_at > {{ high_water_mark(last_exported) }}

    union

    select {{ checksummed }}.customer_id
    from {{ checksummed }}
    left join {{ this }} as held
        on {{ checksummed }}.customer_id = held.customer_id
    where
        held.customer_id is null
        or held.source_records_checksum <> {{ checksummed }}.source_records_checksum
{%- endmacro %}

{#- post_hook of a per-person state model: delete the people no record matches any more. -#}
{% macro delete_people_without_records(source_system) -%}
    {%- if is_incremental() -%}
    delete from {{ this }}
    where customer_id not in (
        select customer_id from {{ ref('int_identity__source_records') }}
        where source_system = '{{ source_system }}' and customer_id is not null
    )
    {%- endif -%}
{%- endmacro %}

{#- Models keyed on export time (staging): each row comes from one raw export
    row and never changes once written, except that a row exported after as_of stays
    quarantined until as_of passes it. An incremental build replaces the tail: the held rows
    exported after the tail's start are deleted (pre_hook delete_export_tail) and the raw rows
    exported after it are read again (append). The start is the latest export time held, less
    var incremental_lookback_hours, over the held rows for which `counted` is true; it is read
    once, before the delete, and written into both statements as a literal, so both use the same
    instant and DuckDB can skip the Parquet row groups exported before it. A NULL export time
    is always in the tail. None: the model holds nothing, everything is the tail. -#}
{#- is_incremental() where a macro calls it: a unit test has no `this` and builds in full. -#}
{% macro incremental_build() -%}
    {{ return(this is not none and is_incremental()) }}
{%- endmacro %}

{% macro export_tail_start(counted='true') -%}
    {%- set query -%}
        select {{ dbt.dateadd('hour', -1 * (var('incremental_lookback_hours', 0) | int), 'max(exported_at)') }}
        from {{ this }}
        where {{ counted }}
    {%- endset -%}
    {%- set start = run_query(query).columns[0].values()[0] -%}
    {{ return(none if start is none else "cast('" ~ start ~ "' as " ~ dbt.type_timestamp() ~ ")") }}
{%- endmacro %}

{#- The condition on exported_at (naive UTC) that keeps what was exported after `start` (a
    timestamp literal) or has no export time: true when `start` is None (read everything). -#}
{% macro exported_after(exported_at, start) -%}
    {%- if start is none -%}
        true
    {%- else -%}
        ({{ exported_at }} > {{ start }} or {{ exported_at }} is null)
    {%- endif -%}
{%- endmacro %}

{#- The condition on a model's exported_at (naive UTC) that keeps the tail: true in a full build. -#}
{% macro exported_in_tail(exported_at, counted='true') -%}
    {{- exported_after(exported_at, export_tail_start(counted) if incremental_build() else none) -}}
{%- endmacro %}

{#- pre_hook of a model keyed on export time: delete the held tail it is about to read again. -#}
{% macro delete_export_tail(counted='true') -%}
    {%- if incremental_build() -%}
    delete from {{ this }} where {{ exported_in_tail('exported_at', counted) }}
    {%- endif -%}
{%- endmacro %}

{#- A cheap necessary condition on the raw export column for exported_in_tail(), read where the
    source is scanned so that an engine can skip data by its statistics; true elsewhere. -#}
{% macro raw_exported_in_tail(raw_column, counted='true') -%}
    {%- set start = export_tail_start(counted) if incremental_build() else none -%}
    {%- if start is none -%}
        true
    {%- else -%}
        {{ adapter.dispatch('raw_exported_in_tail', 'retention')(raw_column, start) }}
    {%- endif -%}
{%- endmacro %}

{% macro default__raw_exported_in_tail(raw_column, start) -%}
    true
{%- endmacro %}

{#- A TIMESTAMP column (Parquet) holds naive UTC: compared as is, Parquet row groups exported
    before the start are skipped. Text may carry a UTC offset that a cast to TIMESTAMP drops
    (local wall time, at most 14 hours after the instant), hence the margin; a blank or
    unreadable value stays for the exact test. -#}
{% macro duckdb__raw_exported_in_tail(raw_column, start) -%}
    (try_cast({{ raw_column }} as timestamp) > {{ start }}
        - case when typeof({{ raw_column }}) = 'TIMESTAMP' then interval 0 hour else interval 14 hour end
        or try_cast({{ raw_column }} as timestamp) is null)
{%- endmacro %}

{#- {'source_system.source_table': start literal} read from a companion model that keeps, per
    input, the latest export its model has seen (`mark_column`): the mark less the lookback, in
    an incremental build; an input without a mark is not in it (read it whole). Read through the
    relation, not ref(): the companion is built after the model that reads its marks. -#}
{% macro companion_mark_starts(companion, mark_column) -%}
    {%- set starts = {} -%}
    {%- if incremental_build() -%}
        {%- set node = graph.nodes.values() | selectattr('name', 'equalto', companion) | first -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema,
                                                identifier=node.alias) -%}
        {%- if relation is not none -%}
            {%- set query -%}
                select source_system, source_table,
                    {{ dbt.dateadd('hour', -1 * (var('incremental_lookback_hours', 0) | int), mark_column) }}
                from {{ relation }}
                where {{ mark_column }} is not null
            {%- endset -%}
            {%- for row in run_query(query).rows -%}
                {%- do starts.update({row[0] ~ '.' ~ row[1]: "cast('" ~ row[2] ~ "' as " ~ dbt.type_timestamp() ~ ")"}) -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(starts) }}
{%- endmacro %}

{#- An incremental build of a table built before it kept `columns` (a new high-water mark, say)
    would stop at a binder error; this says what to do instead. One catalog query per build. -#}
{% macro require_held_columns(columns) -%}
    {%- if execute and incremental_build() -%}
        {%- set held = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
        {%- set missing = columns | reject('in', held) | list -%}
        {%- if missing -%}
            {{ exceptions.raise_compiler_error(
                this.identifier ~ " was built by an earlier version, without the column(s) " ~ missing | join(', ')
                ~ ": run `dbt run --full-refresh -s " ~ this.identifier ~ "` once (README, Incremental builds)") }}
        {%- endif -%}
    {%- endif -%}
{%- endmacro %}
