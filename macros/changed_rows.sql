{#- Marts kept by difference (README, "Incremental builds"): the model computes all its rows as a
    full build does, then keeps only those not held yet or held with another value, which dbt
    merges in (delete+insert on the unique key); a post_hook deletes the held rows whose key the
    model no longer yields. The table then holds exactly the rows of a full build, whatever
    changed upstream (a new export, a person leaving, as_of moving), but a build writes only the
    rows that changed: on DuckDB writing a large table costs more than computing it.
    The columns compared are the model's contract columns. Spark rebuilds in full
    (state_materialization()). -#}

{#- The rows of CTE `final` that the table does not hold as they are. `unique_key`: a list. -#}
{% macro rows_not_held(final, unique_key) -%}
    {%- set columns = model.columns.keys() | list -%}
    {%- if not columns -%}
        {{ exceptions.raise_compiler_error("rows_not_held() compares the model's contract columns: '"
                                           ~ model.name ~ "' lists none in its YAML") }}
    {%- endif -%}
select {{ final }}.*
from {{ final }}
left join (
    select
        {%- for key in unique_key %}
        held.{{ key }},
        {%- endfor %}
        {{ row_digest('held', columns) }} as held_row_digest
    from {{ this }} as held
) as held
    on {% for key in unique_key -%}
    {{ final }}.{{ key }} = held.{{ key }}{{ ' and ' if not loop.last }}
    {%- endfor %}
where
    held.held_row_digest is null
    or held.held_row_digest <> {{ row_digest(final, columns) }}
{%- endmacro %}

{#- post_hook: delete the held rows whose key (`unique_key`, a column or a list; never NULL) is
    not among `keys`, the SQL of the keys the model yields. `keys_unique`: `keys` yields each key
    once; as the table holds every key the model yields once merged, it then holds another only
    when it holds more rows than `keys` yields, and counting both is cheaper than looking. -#}
{% macro delete_rows_without_key(unique_key, keys, keys_unique=false) -%}
    {%- if incremental_build() -%}
    {%- if keys_unique and execute -%}
        {%- set counts = run_query('select (select count(*) from ' ~ this ~ '), (select count(*) from ('
                                   ~ keys ~ ') as yielded_keys)').rows[0] -%}
        {%- if counts[0] == counts[1] -%}
            {{ return('') }}
        {%- endif -%}
    {%- endif -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    delete from {{ this }}
    {%- if unique_key | length == 1 %}
    where {{ unique_key[0] }} not in (
        select kept_keys.{{ unique_key[0] }} from ({{ keys }}) as kept_keys
        where kept_keys.{{ unique_key[0] }} is not null
    )
    {%- else %}
    where not exists (
        select 1 from ({{ keys }}) as kept_keys
        where {% for key in unique_key -%}
        kept_keys.{{ key }} = {{ this.identifier }}.{{ key }}{{ ' and ' if not loop.last }}
        {%- endfor %}
    )
    {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- A digest of a row's `columns` (of table alias `alias`), equal for equal rows, NULLs included. -#}
{% macro row_digest(alias, columns) -%}
    {{ adapter.dispatch('row_digest', 'retention')(alias, columns) }}
{%- endmacro %}

{% macro default__row_digest(alias, columns) -%}
    {{ exceptions.raise_compiler_error("row_digest() has no implementation for adapter '"
                                       ~ adapter.type() ~ "': add one in macros/changed_rows.sql") }}
{%- endmacro %}

{#- hash() of several values mixes the running hash before it XORs in the next value's, so a
    change of one fixed-width value always changes the digest, and any other change leaves it
    equal with a chance of 2^-64 (the same bet as member_fingerprint). -#}
{% macro duckdb__row_digest(alias, columns) -%}
    hash({% for column in columns %}{{ alias }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
{%- endmacro %}

{#- The row's text form is exact (NULL and '' differ), md5 keeps the join narrow. -#}
{% macro postgres__row_digest(alias, columns) -%}
    md5(cast(row({% for column in columns %}{{ alias }}.{{ column }}{{ ', ' if not loop.last }}{% endfor %}) as text))
{%- endmacro %}

{#- Models merged whole (`int_identity__emails`, `cio_events`): the model yields all its rows as
    a full build does, and on DuckDB one MERGE (strategy 'difference', below) makes the table
    hold exactly them, writing only the rows that changed; the rows it no longer yields are
    found in the same pass (WHEN NOT MATCHED BY SOURCE), not by a second run of the model's
    query. A plain table rebuilt in full elsewhere: PostgreSQL has that clause only from 17,
    Spark on parquet cannot merge. -#}
{% macro difference_materialization() -%}
    {{ return(adapter.dispatch('difference_materialization', 'retention')()) }}
{%- endmacro %}

{% macro default__difference_materialization() -%}
    {{ return('table') }}
{%- endmacro %}

{% macro duckdb__difference_materialization() -%}
    {{ return('incremental') }}
{%- endmacro %}

{#- Incremental strategy 'difference' (dbt calls get_incremental_<strategy>_sql): insert the keys
    not held, update the held rows whose other columns differ (NULLs compare equal), delete the
    held keys the model does not yield. `unique_key` (a column or a list) is never NULL. -#}
{% macro get_incremental_difference_sql(arg_dict) -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set unique_key = [unique_key] if unique_key is string else unique_key -%}
    {%- set columns = arg_dict['dest_columns'] | map(attribute='name') | list -%}
    {%- set values = columns | reject('in', unique_key) | list -%}
merge into {{ arg_dict['target_relation'] }} as held
using {{ arg_dict['temp_relation'] }} as yielded
on {% for key in unique_key -%}
    held.{{ key }} = yielded.{{ key }}{{ ' and ' if not loop.last }}
{%- endfor %}
{%- if values %}
when matched and (
    {%- for column in values %}
    held.{{ column }} is distinct from yielded.{{ column }}{{ ' or' if not loop.last }}
    {%- endfor %}
) then update set
    {%- for column in values %}
    {{ column }} = yielded.{{ column }}{{ ',' if not loop.last }}
    {%- endfor %}
{%- endif %}
when not matched then insert ({{ columns | join(', ') }})
values ({% for column in columns %}yielded.{{ column }}{{ ', ' if not loop.last }}{% endfor %})
when not matched by source then delete
{%- endmacro %}
