{#- '' or only spaces become NULL: a blank export field means "no value", never "cleared". -#}
{% macro blank_to_null(column) -%}
    nullif(trim(cast({{ column }} as {{ dbt.type_string() }})), '')
{%- endmacro %}

{#- Emails match across systems only after cleaning (Unicode whitespace trimmed, invisible
    characters removed, fullwidth forms folded, lower-cased); an invalid address is NULL and
    listed in rejected_inputs (macros/inputs.sql). -#}
{% macro normalize_email(column) -%}
    {{ valid_email(clean_identifier_text(column)) }}
{%- endmacro %}

{#- Lower-case hex SHA-256 of a string (NULL stays NULL). -#}
{% macro sha256_hex(expression) -%}
    {{ adapter.dispatch('sha256_hex', 'retention')(expression) }}
{%- endmacro %}

{% macro default__sha256_hex(expression) -%}
    lower(sha256({{ expression }}))
{%- endmacro %}

{% macro duckdb__sha256_hex(expression) -%}
    sha256({{ expression }})
{%- endmacro %}

{% macro postgres__sha256_hex(expression) -%}
    encode(sha256(convert_to({{ expression }}, 'UTF8')), 'hex')
{%- endmacro %}

{% macro spark__sha256_hex(expression) -%}
    sha2({{ expression }}, 256)
{%- endmacro %}

{#- Remove every character matching `pattern` (a POSIX class such as '[^0-9]'). -#}
{% macro strip_chars(expression, pattern) -%}
    {{ adapter.dispatch('strip_chars', 'retention')(expression, pattern) }}
{%- endmacro %}

{% macro default__strip_chars(expression, pattern) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '', 'g')
{%- endmacro %}

{% macro spark__strip_chars(expression, pattern) -%}
    regexp_replace({{ expression }}, '{{ pattern }}', '')
{%- endmacro %}

{#- A double-precision float (money sent as JSON numbers; single-precision FLOAT loses cents). -#}
{% macro type_double() -%}
    {{ adapter.dispatch('type_double', 'retention')() }}
{%- endmacro %}

{% macro default__type_double() -%}double precision{%- endmacro %}

{% macro duckdb__type_double() -%}double{%- endmacro %}

{% macro spark__type_double() -%}double{%- endmacro %}
