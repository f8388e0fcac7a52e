# syntax=docker/dockerfile:1
#
# Two images for docker-compose.yml:
#   lakecast  Python 3.11, Java 17 and the locked dependencies. pyspark ships Spark itself,
#             so this one image runs the Spark master and workers (bin/spark-class), the
#             jobs (`lakecast ...` or spark-submit) and the Thrift SQL server.
#   mlflow    The MLflow tracking server with the PostgreSQL and S3 (MinIO) clients it needs.
#
#   docker compose build && docker compose up

FROM python:3.11-slim-bookworm AS lakecast

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless procps \
 && rm -rf /var/lib/apt/lists/*

ENV VIRTUAL_ENV=/opt/lakecast/venv \
    LAKECAST_HOME=/opt/lakecast/home \
    PIP_NO_CACHE_DIR=1
ENV PATH=$VIRTUAL_ENV/bin:$PATH \
    SPARK_HOME=$VIRTUAL_ENV/lib/python3.11/site-packages/pyspark \
    PYSPARK_PYTHON=$VIRTUAL_ENV/bin/python \
    PYSPARK_DRIVER_PYTHON=$VIRTUAL_ENV/bin/python

WORKDIR /opt/lakecast/app
# Dependencies first, exactly the locked set, so code changes do not reinstall them.
COPY requirements.lock ./
RUN python -m venv $VIRTUAL_ENV \
 && pip install --upgrade pip wheel setuptools \
 && pip install -r requirements.lock

COPY pyproject.toml README.md ./
COPY conf conf
COPY pipelines pipelines
COPY models models
COPY jobs jobs
COPY deploy deploy
RUN pip install --no-deps -e .

# Fetch the Delta JARs (Spark's Ivy) and the metastore's JDBC driver at build time, into the
# ivy_dir of conf/cluster.yaml, so containers start without network access.
RUN LAKECAST_HOME=/tmp/warm lakecast sql "SELECT 1" --set spark.ivy_dir=/opt/lakecast/ivy \
 && LAKECAST_JDBC_PASSWORD=unused lakecast spark-conf --conf conf/cluster.yaml > /dev/null \
 && rm -rf /tmp/warm

VOLUME /opt/lakecast/home
CMD ["lakecast", "--help"]


FROM python:3.11-slim-bookworm AS mlflow
# Same MLflow as the jobs (requirements.lock), plus the backend-store and artifact clients.
RUN pip install --no-cache-dir "mlflow==3.17.2" "psycopg2-binary>=2.9" "boto3>=1.34"
EXPOSE 5000
CMD ["mlflow", "server", "--host", "0.0.0.0", "--port", "5000"]
