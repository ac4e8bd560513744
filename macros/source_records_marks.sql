{#- int_identity__source_records' incremental build. A record's match can change only when
    - it has a new export (int_identity__source_record_exports), or
    - something changed in the store data: every change of the store id map, of an email's
      matched person (int_identity__emails) or of a person's phone comes from a store account
      with a snapshot or an order exported since; a return also takes its store id from its order.
    int_identity__source_records_matched_through keeps, per input, the latest export time the
    held matches have seen. An incremental build matches again every record with an export after
    its system's mark, or carrying the store id, an email or the phone of a person whose store
    account changed since the store marks, or held as matched by phone to such a person (their
    previous phone; all less var incremental_lookback_hours, a NULL export time always counts as
    changed). The candidates of an email only ever grow (a previous email keeps matching), so the
    emails such a person holds now cover every email whose match they can move; a store id never
    moves to another person. The marks move only in a build that also
    ran every identity model between the store staging and the records (any `dbt run`/`dbt build`,
    or a `+int_identity__source_records` selection): otherwise the marks stay and the next build
    matches again more. A missing mark reads all. Spark rebuilds in full (state_materialization()). -#}

{#- The models that must have run with int_identity__source_records for its marks to move. -#}
{% macro source_records_upstream() -%}
    {{ return(['int_store_customers_merged', 'int_identity__store_account_map', 'int_identity__store_customers',
               'int_identity__people', 'int_identity__emails', 'int_identity__source_record_exports',
               'int_identity__source_records']) }}
{%- endmacro %}

{#- True when this invocation builds int_identity__source_records and every model it needs fresh. -#}
{% macro source_records_matched_in_this_build() -%}
    {%- set missing = [] -%}
    {%- for name in source_records_upstream() if ('model.' ~ project_name ~ '.' ~ name) not in selected_resources -%}
        {%- do missing.append(name) -%}
    {%- endfor -%}
    {{ return(missing | length == 0) }}
{%- endmacro %}

{#- {'source_system.source_table': start literal} in an incremental build (the mark less the
    lookback); an input without a mark is read whole. -#}
{% macro source_records_match_starts() -%}
    {{ return(companion_mark_starts('int_identity__source_records_matched_through', 'matched_through')) }}
{%- endmacro %}
