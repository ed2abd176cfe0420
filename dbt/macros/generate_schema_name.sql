{#- Custom schemas are used as written (glaze_staging, glaze_marts), not prefixed with the target schema:
    the SQL people type is `glaze_marts.companies` whatever the profile says. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
