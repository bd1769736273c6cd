# syntax=docker/dockerfile:1
# Tenure image: one image, every service. The command picks the role, e.g.
#   docker run tenure:dev serve ingest --host 0.0.0.0 --port 8080
# In containers TENURE_KAFKA_BOOTSTRAP and TENURE_DATABASE_URL are always set, so the
# embedded broker and the embedded Postgres are never started.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Only what the distribution needs (see [tool.setuptools.packages.find] in pyproject.toml).
COPY pyproject.toml README.md ./
COPY tenure ./tenure
COPY services ./services
COPY streams ./streams
COPY schemas ./schemas
RUN pip install .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    TENURE_STATE_DIR=/var/lib/tenure
RUN groupadd --system --gid 10001 tenure \
 && useradd --system --uid 10001 --gid tenure --home-dir /var/lib/tenure --shell /usr/sbin/nologin tenure \
 && mkdir -p /var/lib/tenure \
 && chown tenure:tenure /var/lib/tenure
COPY --from=build /opt/venv /opt/venv
USER 10001:10001
WORKDIR /var/lib/tenure
# ingest, query, archiver / sdk-validator / projector metrics
EXPOSE 8080 8081 9101 9102 9103
ENTRYPOINT ["tenure"]
CMD ["--help"]
