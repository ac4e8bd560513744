{#- Seeds on Spark. dbt-spark's own loader binds each value by text substitution in session
    mode (`'%s' % value`), so a NULL arrives as the text 'None' and a quote in a value breaks
    the statement (an open dbt-spark bug). This override, picked by dispatch before the
    adapter's, writes every value as a SQL literal instead: NULL stays NULL, text is escaped.
    It renders the same SQL for every connection method, so Thrift and HTTP load alike. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {% for row in chunk -%}
                ({%- for col_name in agate_table.column_names -%}
                    {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                    {#- Spark casts to varchar(n) as to string (with a warning); the column checks n -#}
                    {%- set type = 'string' if type.lower().startswith(('varchar', 'char')) else type -%}
                    cast({{ spark_seed_literal(row[loop.index0]) }} as {{ type }}){{ ", " if not loop.last }}
                {%- endfor -%}){{ "," if not loop.last }}
            {% endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first -%}{%- do statements.append(sql) -%}{%- endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{#- One CSV value as a Spark SQL literal: NULL, or quoted text (Spark string literals treat a
    backslash as an escape, so backslashes and quotes are escaped); the cast types it. -#}
{% macro spark_seed_literal(value) -%}
    {%- if value is none -%}
        null
    {%- else -%}
        '{{ (value | string) | replace("\\", "\\\\") | replace("'", "\\'") }}'
    {%- endif -%}
{%- endmacro %}
