-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_reviews__reviews') }}
{%- set tz = source_timezone('reviews') %}

with

source as (select * from {{ source('reviews', 'reviews') }}),

-- identifiers cleaned once (macros/inputs.sql); renamed validates them
cleaned as (
    select
        *,
        {{ clean_identifier_text('customer_email') }} as customer_email_cleaned
    from source
),

renamed as (
    select
        {{ blank_to_null('review_id') }} as review_id,
        {{ valid_email('customer_email_cleaned') }} as email,
        {{ blank_to_null('product_id') }} as product_id,
        cast(rating as integer) as rating,
        {{ to_utc('submitted_at', tz) }} as submitted_at,
        cast(_exported_at as {{ dbt.type_timestamp() }}) as exported_at
    from cleaned
)

select * from renamed
