-- Lifetime value is net spend: it can reach zero (everything refunded) but never go below.
-- A negative value means a bad amount slipped past staging's quarantine (rejected_inputs),
-- or refunds exceed what was paid; either way no audience may be built from it.
select customer_id, gross_revenue, refunded_amount, lifetime_value
from {{ ref('customer_profile') }}
where lifetime_value < 0
