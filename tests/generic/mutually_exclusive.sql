{#- Audiences of one exclusivity group never share a member. Checks every group (or only
    `group` when given), so a new group needs no new test. Fails with one row per member that
    sits in more than one audience of a group. -#}
{% test mutually_exclusive(model, column_name, group=none, group_column='exclusivity_group', audience_column='audience_name') %}

select
    {{ group_column }} as exclusivity_group,
    {{ column_name }} as member_id,
    count(distinct {{ audience_column }}) as audience_count
from {{ model }}
where {{ group_column }} {{ "= '" ~ group ~ "'" if group else 'is not null' }}
group by {{ group_column }}, {{ column_name }}
having count(distinct {{ audience_column }}) > 1

{% endtest %}
