{#- cio_objects_orders' incremental build. An order's row (its state joined to a person of
    cio_people) can change only when
    - int_orders__state rewrote the order: it then carries an order export after the model's
      order mark or a refund export after its refund mark, or it is new because its store account
      arrived, whose person then carries a store export after int_identity__people's mark; or
    - its person entered cio_people (customer_profile holds every person of int_identity__people,
      and a new person arrives with the store export of a new account) or left it.
    int_cio_objects_orders__seen_through keeps the latest order export, the latest refund export
    and the latest person store export the held rows have seen (a mark per input: one export may
    run behind another). An incremental build recomputes the orders exported, or with a refund
    exported, after their marks and the orders of the people exported after the customer mark (all less var
    incremental_lookback_hours; a NULL export time always counts), writes them all, and its
    post_hook deletes the held orders it no longer yields. The customer mark moves only in a build
    that also ran int_customer_profile__joined (customer_profile is a view of it) and cio_people
    (cio_people then holds every person int_identity__people held), the order mark in any build
    of cio_objects_orders; a missing mark recomputes all. Spark rebuilds in full
    (state_materialization()). -#}

{#- The models that must have run with cio_objects_orders for its customer mark to move. -#}
{% macro cio_objects_orders_people_upstream() -%}
    {{ return(['int_customer_profile__joined', 'customer_profile', 'cio_people', 'cio_objects_orders']) }}
{%- endmacro %}

{#- True when this invocation builds every model of `names` (of this project). -#}
{% macro all_selected(names) -%}
    {%- set missing = [] -%}
    {%- for name in names if ('model.' ~ project_name ~ '.' ~ name) not in selected_resources -%}
        {%- do missing.append(name) -%}
    {%- endfor -%}
    {{ return(missing | length == 0) }}
{%- endmacro %}

{#- The condition on `orders` (int_orders__state) that keeps the orders an incremental build
    recomputes: exported after the order mark or with a refund exported after the refund mark, or
    of a person with a store export after the customer mark. Two disjoint parts, so that a union
    need not compare rows. A missing refund mark (no refund seen yet, or marks kept before it
    existed) recomputes every order. -#}
{% macro cio_objects_orders_to_refresh(orders) -%}
    {%- set starts = companion_mark_starts('int_cio_objects_orders__seen_through', 'seen_through') -%}
    {%- set refunds_start = starts.get('store.refunds') -%}
    {%- set exported = '(' ~ exported_after(orders ~ '.orders_last_exported_at', starts.get('store.orders')) ~ ' or '
                       ~ ('true' if refunds_start is none else
                          'coalesce(' ~ orders ~ '.refunds_last_exported_at > ' ~ refunds_start ~ ', false)') ~ ')' -%}
    {%- set of_people_exported -%}
        {{ orders }}.customer_id in (
            select refreshed_people.customer_id
            from {{ ref('int_identity__people') }} as refreshed_people
            where {{ exported_after('refreshed_people.store_last_exported_at', starts.get('store.customers')) }}
        )
    {%- endset -%}
    {{ return({'exported': exported,
               'of_people_exported': of_people_exported ~ ' and not coalesce(' ~ exported ~ ', false)'}) }}
{%- endmacro %}

{#- The rows of int_orders__state an incremental build recomputes (a whole query). -#}
{% macro cio_objects_orders_refreshed() -%}
    {%- set to_refresh = cio_objects_orders_to_refresh('refreshed_orders') -%}
    select refreshed_orders.*
    from {{ ref('int_orders__state') }} as refreshed_orders
    where {{ to_refresh['exported'] }}

    union all

    select refreshed_orders.*
    from {{ ref('int_orders__state') }} as refreshed_orders
    where {{ to_refresh['of_people_exported'] }}
{%- endmacro %}

{#- post_hook: delete the held orders the model no longer yields (a person who left cio_people, an
    order that left int_orders__state or changed person). The held keys cover every key the model
    yields (each changed one was recomputed), so there is such an order exactly when the table
    holds more rows than the model yields: counting those is half the cost of looking for them. -#}
{% macro delete_cio_objects_orders_gone() -%}
    {%- if execute and incremental_build() -%}
    {%- set yielded -%}
        select kept_orders.order_id, kept_orders.customer_id
        from {{ ref('int_orders__state') }} as kept_orders
        where kept_orders.customer_id in (select known_people.customer_id from {{ ref('cio_people') }} as known_people)
    {%- endset -%}
    {%- set counts = run_query('select (select count(*) from ' ~ this ~ '), (select count(*) from ('
                               ~ yielded ~ ') as yielded_orders)').rows[0] -%}
    {%- if counts[0] != counts[1] -%}
    delete from {{ this }}
    where not exists (
        select 1 from ({{ yielded }}) as yielded_orders
        where
            yielded_orders.order_id = {{ this.identifier }}.object_id
            and yielded_orders.customer_id = {{ this.identifier }}.customer_id
    )
    {%- endif -%}
    {%- endif -%}
{%- endmacro %}
