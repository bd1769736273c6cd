# syntax=docker/dockerfile:1
# Tenure image: one image, every service. The command picks the role, e.g.
#   docker run tenure:dev serve ingest --host 0.0.0.0 --port 8080
# In containers TENURE_KAFKA_BOOTSTRAP and TENURE_DATABASE_URL are always set, so the
# embedded broker and the embedded Postgres are never started.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /src
# Only what the distribution needs (see [tool.setuptools.packages.find] in pyproject.toml).
COPY pyproject.toml README.md ./
COPY tenure ./tenure
COPY services ./services
COPY streams ./streams
COPY schemas ./schemas
# The tenure wheel (the one tests/integration/test_wheel.py builds, installs without extras
# and runs) and the wheels of its dependencies, so the runtime stage installs offline.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    TENURE_STATE_DIR=/var/lib/tenure
RUN groupadd --system --gid 10001 tenure \
 && useradd --system --uid 10001 --gid tenure --home-dir /var/lib/tenure --shell /usr/sbin/nologin tenure \
 && mkdir -p /var/lib/tenure \
 && chown tenure:tenure /var/lib/tenure
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels tenure
USER 10001:10001
WORKDIR /var/lib/tenure
# ingest, query, archiver / sdk-validator / projector metrics
EXPOSE 8080 8081 9101 9102 9103
ENTRYPOINT ["tenure"]
CMD ["--help"]
