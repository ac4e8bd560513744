-- Cart recovery: standard-value carts abandoned 0 to <1 day ago
-- (the shared rule is in macros/audiences.sql, cart_abandon_audience).
{{ cart_abandon_audience(
    'aud_cart_abandon_0_1d',
    'Cart_Abandon_0-1d__NoPurchase',
    window='0_1d',
    value_tier='standard',
) }}
