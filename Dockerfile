# The code location image: `dagster api grpc` serving glaze_pipeline (also used by webserver and daemon).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_PYTHON_DOWNLOADS=never
RUN pip install --no-cache-dir uv==0.13.9
WORKDIR /opt/glaze
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY glaze_pipeline ./glaze_pipeline
COPY dbt ./dbt
COPY workspace.yaml ./
COPY docker/dagster.yaml ./docker/dagster.yaml
RUN uv sync --frozen --no-dev
# The dbt manifest, built once here so the code location loads without parsing the project (no database needed).
RUN .venv/bin/python -m glaze_pipeline.defs.dbt.project
ENV PATH=/opt/glaze/.venv/bin:$PATH DAGSTER_HOME=/opt/dagster/home GLAZE_HOME=/var/lib/glaze
RUN mkdir -p $DAGSTER_HOME $GLAZE_HOME && cp docker/dagster.yaml $DAGSTER_HOME/dagster.yaml
EXPOSE 4000
CMD ["dagster", "api", "grpc", "-h", "0.0.0.0", "-p", "4000", "-m", "glaze_pipeline.definitions"]
