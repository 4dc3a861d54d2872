# syntax=docker/dockerfile:1
# driftdesk: the API, the reviewers' UI and the background loops in one image.
#
#   docker build -t driftdesk .
#   docker run -p 8000:8000 -v driftdesk:/var/lib/driftdesk driftdesk          # SQLite in the volume
#   docker run ... -e DRIFTDESK_DATABASE_URL=postgresql+psycopg://... driftdesk worker
#
# The default command is `driftdesk serve --host 0.0.0.0`; any other driftdesk
# command (worker, migrate, keys create ...) replaces it.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- build: a virtualenv
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# the dependencies first, in their own layer: code changes do not reinstall them
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt
COPY app ./app
COPY monitors ./monitors
COPY exceptions_queue ./exceptions_queue
COPY storage ./storage
COPY demo ./demo
# a regular (not editable) install: the code and its templates land in site-packages
RUN pip install --no-deps . && python -m compileall -q /opt/venv/lib

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="driftdesk" \
      org.opencontainers.image.description="Drift monitoring, exception tickets and labelled retraining data for deployed models" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 driftdesk \
    && useradd --system --uid 10001 --gid driftdesk --home-dir /var/lib/driftdesk \
       --create-home --shell /usr/sbin/nologin driftdesk
COPY --from=build /opt/venv /opt/venv
# migrations live beside the code, not in the package: app/ops/migrations.py finds them here
COPY alembic /opt/driftdesk/alembic
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIFTDESK_ALEMBIC_DIR=/opt/driftdesk/alembic \
    DRIFTDESK_DATABASE_URL=sqlite:////var/lib/driftdesk/driftdesk.db
WORKDIR /var/lib/driftdesk
VOLUME ["/var/lib/driftdesk"]
USER driftdesk:driftdesk
EXPOSE 8000
# liveness only (no database): /readyz is for load balancers that should wait for migrations
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["driftdesk"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
