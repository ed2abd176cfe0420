"""SQL models over the landed tables: the dbt project in dbt/ as Dagster assets, its tests as asset checks."""
