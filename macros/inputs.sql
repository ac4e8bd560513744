{#- Input validation shared by staging (which nulls a bad value or quarantines a bad row) and
    rejected_inputs (which lists each with its reason), so both always apply the same rules. -#}

{#- Characters that never belong in an identifier. Unicode whitespace (tabs, CR/LF, NBSP,
    the ideographic space...) becomes a plain space, to be trimmed at the ends and refused
    inside; zero-width and other invisible format characters are removed. -#}
{% macro unicode_whitespace() -%}
    {{- return("\t\n\x0b\x0c\r\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000") -}}
{%- endmacro %}

{% macro invisible_characters() -%}
    {{- return("\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e") -}}
{%- endmacro %}

{#- `expression` as text with Unicode compatibility forms folded to ASCII (fullwidth '＠',
    '０'..'９', 'Ａ'..'ｚ' ...), whitespace made plain spaces, invisible characters removed.
    NFKC where the engine has it (PostgreSQL); elsewhere an explicit map of the fullwidth
    ASCII block U+FF01..U+FF5E (all but the fullwidth apostrophe and backslash, which stay
    and so make the value invalid rather than risk quoting problems). -#}
{% macro fold_unicode(expression) -%}
    {{ adapter.dispatch('fold_unicode', 'retention')(expression) }}
{%- endmacro %}

{% macro default__fold_unicode(expression) -%}
    {%- set fullwidth = [] -%}
    {%- set ascii = [] -%}
    {%- for code in range(65281, 65375) if code not in (65287, 65340) -%}
        {%- do fullwidth.append('%c' % code) -%}
        {%- do ascii.append('%c' % (code - 65248)) -%}
    {%- endfor -%}
    {%- set spaces = ' ' * (unicode_whitespace() | length) -%}
    translate(cast({{ expression }} as {{ dbt.type_string() }}),
        '{{ fullwidth | join("") ~ unicode_whitespace() ~ invisible_characters() }}',
        '{{ ascii | join("") ~ spaces }}')
{%- endmacro %}

{#- DuckDB's translate() with this long map costs about 18 us a value (4.7 s for 265k order
    emails, most of staging's time at 10M); printable ASCII, nearly every value, has nothing to
    map, so it skips translate (0.13 s for the same emails; same results). -#}
{% macro duckdb__fold_unicode(expression) -%}
    {%- set text = 'cast(' ~ expression ~ ' as ' ~ dbt.type_string() ~ ')' -%}
    case when regexp_matches({{ text }}, '^[ -~]*$') then {{ text }} else {{ default__fold_unicode(expression) }} end
{%- endmacro %}

{% macro postgres__fold_unicode(expression) -%}
    {%- set spaces = ' ' * (unicode_whitespace() | length) -%}
    translate(normalize(cast({{ expression }} as {{ dbt.type_string() }}), NFKC),
        '{{ unicode_whitespace() ~ invisible_characters() }}', '{{ spaces }}')
{%- endmacro %}

{#- Folded, trimmed, lower-cased text; NULL when blank. -#}
{% macro clean_identifier_text(expression) -%}
    nullif(lower(trim({{ fold_unicode(expression) }})), '')
{%- endmacro %}

{#- A deliverable address after cleaning: one '@', a local part of the usual characters with
    no leading, trailing or doubled dot, a domain of dot-separated labels (letters, digits,
    inner hyphens; internationalized domains in their ASCII 'xn--' form) ending in a TLD of 2+
    characters. Anything else is not sent anywhere. -#}
{% macro email_pattern() -%}
    {{- return("^[a-z0-9!#$%&'*+/=?^_{|}~-]+([.][a-z0-9!#$%&'*+/=?^_{|}~-]+)*"
               ~ "@([a-z0-9]([a-z0-9-]*[a-z0-9])?[.])+[a-z][a-z0-9-]*[a-z0-9]$") -}}
{%- endmacro %}

{#- The email when `cleaned` (the output of clean_identifier_text) is valid, else NULL
    (rejected_inputs says why). Staging cleans once in a CTE, then validates. -#}
{% macro valid_email(cleaned) -%}
    case when {{ matches_regex(cleaned, email_pattern()) }} then {{ cleaned }} end
{%- endmacro %}

{#- Why valid_email() refused a non-blank `cleaned` value (NULL when it did not). -#}
{% macro email_rejection_reason(cleaned) -%}
    case
        when {{ cleaned }} is null or {{ matches_regex(cleaned, email_pattern()) }} then null
        when {{ cleaned }} not like '%@%' then 'email_without_at_sign'
        when {{ cleaned }} like '%@%@%' then 'email_with_several_at_signs'
        when {{ cleaned }} like '% %' then 'email_with_inner_whitespace'
        when {{ cleaned }} like '%..%' then 'email_with_consecutive_dots'
        when {{ dbt.split_part(cleaned, "'@'", 2) }} not like '%.%' then 'email_domain_without_dot'
        else 'email_invalid_characters'
    end
{%- endmacro %}

{#- Why normalize_phone() gave NULL for a non-blank `cleaned` value (NULL when it did not). -#}
{% macro phone_rejection_reason(cleaned, country_code=none) -%}
    case
        when {{ cleaned }} is not null and {{ normalize_phone(cleaned, country_code) }} is null
            then 'phone_not_e164'
    end
{%- endmacro %}

{#- Money that cannot be negative (order totals, line prices, refunds, cart values). -#}
{% macro is_negative_amount(column) -%}
    coalesce(cast({{ column }} as {{ dbt.type_numeric() }}) < 0, false)
{%- endmacro %}

{#- True when `expression` (text) matches the regular expression `pattern` anywhere. -#}
{% macro matches_regex(expression, pattern) -%}
    {{ adapter.dispatch('matches_regex', 'retention')(expression, pattern) }}
{%- endmacro %}

{% macro default__matches_regex(expression, pattern) -%}
    regexp_matches({{ expression }}, {{ regex_literal(pattern) }})
{%- endmacro %}

{% macro postgres__matches_regex(expression, pattern) -%}
    ({{ expression }} ~ {{ regex_literal(pattern) }})
{%- endmacro %}

{% macro spark__matches_regex(expression, pattern) -%}
    ({{ expression }} rlike {{ regex_literal(pattern) }})
{%- endmacro %}

{#- Replace the matches of `pattern` with `replacement`, where '\1' names the first group. -#}
{% macro regex_replace(expression, pattern, replacement) -%}
    {{ adapter.dispatch('regex_replace', 'retention')(expression, pattern, replacement) }}
{%- endmacro %}

{% macro default__regex_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ regex_literal(pattern) }}, {{ regex_literal(replacement) }})
{%- endmacro %}

{#- Java regexes write a group reference as '$1'. -#}
{% macro spark__regex_replace(expression, pattern, replacement) -%}
    regexp_replace({{ expression }}, {{ regex_literal(pattern) }}, {{ regex_literal(replacement | replace('\\', '$')) }})
{%- endmacro %}

{#- A regular expression as an SQL string literal: standard SQL doubles quotes; Spark's
    literals treat a backslash as an escape and take \' for a quote. -#}
{% macro regex_literal(pattern) -%}
    {{ adapter.dispatch('regex_literal', 'retention')(pattern) }}
{%- endmacro %}

{% macro default__regex_literal(pattern) -%}
    '{{ pattern | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__regex_literal(pattern) -%}
    '{{ pattern | replace('\\', '\\\\') | replace("'", "\\'") }}'
{%- endmacro %}
