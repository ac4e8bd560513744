-- Seeds mode reads the seed through source(); this keeps the seed built first (a no-op with Parquet).
-- depends_on: {{ ref('raw_reviews__reviews') }}
{%- set tz = source_timezone('reviews') %}

with

source as (select * from {{ source('reviews', 'reviews') }}),

renamed as (
    select
        {{ blank_to_null('review_id') }} as review_id,
        {{ normalize_email('customer_email') }} as email,
        {{ blank_to_null('product_id') }} as product_id,
        cast(rating as integer) as rating,
        {{ to_utc('submitted_at', tz) }} as submitted_at,
        cast(_exported_at as {{ dbt.type_timestamp() }}) as exported_at
    from source
)

select * from renamed
