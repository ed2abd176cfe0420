{#- Fails on every row for which the SQL expression is not true (like dbt_utils.expression_is_true). -#}
{% test expression_holds(model, expression) %}

select *
from {{ model }}
where not ({{ expression }})

{% endtest %}
