{#- E.164 ('+' country code, national number without trunk prefix) from the free-text phones
    the sources hold: '+44 7700 900123', '0044 7700 900123', '07700 900123' (GB),
    '+44 (0)20 7946 0958' (the '(0)' trunk prefix dropped), '(415) 555-0134' (US),
    '+1 415 555 0134 ext. 23' (an extension, from the first letter, '#' or ';' on, is cut off,
    never merged into the number). Fullwidth digits and '+' count as ASCII. National numbers
    take the calling code of `country_code` (the customer's country) or var
    default_phone_country; a national number from a country not in calling_codes() is NULL.
    Anything that does not end up with 8 to 15 digits is NULL: a wrong number is worse than none.
    `cleaned` is the phone after clean_identifier_text() (staging cleans once, in a CTE). -#}
{% macro calling_codes() -%}
    {{ return({'US': '1', 'CA': '1', 'GB': '44', 'IE': '353', 'DE': '49', 'FR': '33',
               'NL': '31', 'BE': '32', 'ES': '34', 'IT': '39', 'AT': '43', 'CH': '41',
               'AU': '61', 'NZ': '64', 'SE': '46', 'DK': '45', 'NO': '47'}) }}
{%- endmacro %}

{#- Calling codes whose national numbers start with a trunk '0' that is dialled only at home:
    after the country code it is dropped ('+44 020' and '+44 (0)20' are '+4420'). Italy keeps its
    leading 0; Spain, Denmark and Norway have no trunk prefix; NANP's trunk '1' is handled apart. -#}
{% macro trunk_zero_calling_codes() -%}
    {{ return(['44', '353', '49', '33', '31', '32', '43', '41', '61', '64', '46']) }}
{%- endmacro %}

{% macro normalize_phone(cleaned, country_code=none) -%}
    {%- set default_country = var('default_phone_country', 'US') -%}
    {%- set country -%}
        coalesce(upper({{ blank_to_null(country_code) if country_code else 'null' }}), '{{ default_country }}')
    {%- endset -%}
    {%- set without_extension = regex_replace(cleaned, '[a-z#;].*$', '') -%}
    {%- set kept = strip_chars(without_extension, '[^0-9+]') -%}
    {%- set digits = strip_chars(without_extension, '[^0-9]') -%}
    {%- set calling_code -%}
        case {{ country }}
            {%- for iso, code in calling_codes().items() %}
            when '{{ iso }}' then '{{ code }}'
            {%- endfor %}
        end
    {%- endset -%}
    {%- set international -%}
        case
            when {{ kept }} like '+%' then '+' || {{ digits }}
            when {{ digits }} like '00%' then '+' || substr({{ digits }}, 3)
            {#- NANP numbers are often written with their leading 1 but no '+' -#}
            when ({{ calling_code }}) = '1' and length({{ digits }}) = 11 and {{ digits }} like '1%'
                then '+' || {{ digits }}
            {#- || keeps NULL: no calling code, no number -#}
            else '+' || ({{ calling_code }}) || {{ digits }}
        end
    {%- endset -%}
    {%- set candidate = regex_replace(international,
                                      '^[+](' ~ trunk_zero_calling_codes() | join('|') ~ ')0', '+\\1') -%}
    case
        when length({{ digits }}) between 7 and 15
            and length({{ candidate }}) between 9 and 16
            then {{ candidate }}
    end
{%- endmacro %}
