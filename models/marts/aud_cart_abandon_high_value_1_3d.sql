-- Cart recovery: high-value carts abandoned 1 to <3 days ago
-- (the shared rule is in macros/audiences.sql, cart_abandon_audience).
{{ cart_abandon_audience(
    'aud_cart_abandon_high_value_1_3d',
    'Cart_Abandon_High_Value_1-3d__NoPurchase',
    window='1_3d',
    value_tier='high',
) }}
