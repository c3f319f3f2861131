# The santelake image: Airflow, the santelake package and its DAGs, for the Helm chart's
# api-server, scheduler, dag-processor, triggerer and migration job, its bootstrap Job
# (`santelake bootstrap`) and its helm test pod (`santelake smoke-test`).
#
#   docker build -t <registry>/santelake/santelake:0.1.0 .
#
# The base is pinned by version; pin it by digest too for a reproducible build:
#   docker build --build-arg PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:<digest> .
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: compilers live here only; everything is installed into one virtualenv.
FROM ${PYTHON_IMAGE} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/santelake/venv
WORKDIR /src
COPY pyproject.toml constraints.txt README.md* ./
COPY src ./src
RUN /opt/santelake/venv/bin/pip install --no-compile -c constraints.txt . \
 && /opt/santelake/venv/bin/pip uninstall -y pip setuptools wheel

# Run stage: the interpreter, the virtualenv, the DAGs, schemas and policies; no compiler,
# no package manager cache, no pip; a fixed non-root user (the chart runs it as 50000).
FROM ${PYTHON_IMAGE}
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --gid 50000 santelake \
 && useradd --uid 50000 --gid 50000 --home-dir /opt/airflow --no-create-home --shell /usr/sbin/nologin santelake \
 && python -m pip uninstall -y pip setuptools wheel
COPY --from=build /opt/santelake/venv /opt/santelake/venv
COPY dags /opt/santelake/dags
COPY iceberg_schemas /opt/santelake/iceberg_schemas
COPY policies /opt/santelake/policies
ENV PATH=/opt/santelake/venv/bin:$PATH \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/santelake/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    GX_ANALYTICS_ENABLED=false \
    SANTELAKE_SCHEMAS_DIR=/opt/santelake/iceberg_schemas \
    SANTELAKE_POLICIES_DIR=/opt/santelake/policies \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 50000:50000
WORKDIR /opt/airflow
CMD ["airflow", "version"]
