{#- E.164 ('+' country code, national number without trunk prefix) from the free-text phones
    the sources hold: '+44 7700 900123', '0044 7700 900123', '07700 900123' (GB),
    '(415) 555-0134' (US). National numbers take the calling code of `country_code`
    (the customer's country) or var default_phone_country. Anything that does not end up
    with 8 to 15 digits is NULL: a wrong number is worse than none. -#}
{% macro calling_codes() -%}
    {{ return({'US': '1', 'CA': '1', 'GB': '44', 'IE': '353', 'DE': '49', 'FR': '33',
               'NL': '31', 'BE': '32', 'ES': '34', 'IT': '39', 'AT': '43', 'CH': '41',
               'AU': '61', 'NZ': '64', 'SE': '46', 'DK': '45', 'NO': '47'}) }}
{%- endmacro %}

{% macro normalize_phone(phone, country_code=none) -%}
    {%- set default_country = var('default_phone_country', 'US') -%}
    {%- set country -%}
        coalesce(upper({{ blank_to_null(country_code) if country_code else 'null' }}), '{{ default_country }}')
    {%- endset -%}
    {%- set kept = strip_chars(blank_to_null(phone), '[^0-9+]') -%}
    {%- set digits = strip_chars(blank_to_null(phone), '[^0-9]') -%}
    {%- set calling_code -%}
        case {{ country }}
            {%- for iso, code in calling_codes().items() %}
            when '{{ iso }}' then '{{ code }}'
            {%- endfor %}
        end
    {%- endset -%}
    {%- set candidate -%}
        case
            when {{ kept }} like '+%' then concat('+', {{ digits }})
            when {{ digits }} like '00%' then concat('+', substr({{ digits }}, 3))
            {#- NANP numbers are often written with their leading 1 but no '+' -#}
            when ({{ calling_code }}) = '1' and length({{ digits }}) = 11 and {{ digits }} like '1%'
                then concat('+', {{ digits }})
            when {{ digits }} like '0%'
                then concat('+', {{ calling_code }}, substr({{ digits }}, 2))
            else concat('+', {{ calling_code }}, {{ digits }})
        end
    {%- endset -%}
    case
        when length({{ digits }}) between 7 and 15
            and length({{ candidate }}) between 9 and 16
            then {{ candidate }}
    end
{%- endmacro %}
