{#- Audiences of one exclusivity group never share a member.
    Fails with one row per member that sits in more than one audience of `group`. -#}
{% test mutually_exclusive(model, column_name, group, group_column='exclusivity_group', audience_column='audience_name') %}

select
    {{ column_name }} as member_id,
    count(distinct {{ audience_column }}) as audience_count
from {{ model }}
where {{ group_column }} = '{{ group }}'
group by {{ column_name }}
having count(distinct {{ audience_column }}) > 1

{% endtest %}
