# syntax=docker/dockerfile:1
# Chairside: one image for the API (the default command) and for the job scheduler.
#
#   docker build -t chairside .
#
# Each deploy, once, before the new replicas start (a release step, so that replicas never race
# each other to migrate the database):
#   docker run --rm -e CHAIRSIDE_DATABASE_URL=... -e CHAIRSIDE_SECRET_KEY=... \
#       chairside chairside migrate
# API replicas (the default command; with several, add `--no-scheduler` and run one scheduler):
#   docker run -p 8000:8000 -e CHAIRSIDE_DATABASE_URL=... -e CHAIRSIDE_SECRET_KEY=... chairside
# One container on the embedded SQLite database (no replicas to race), migrating as it starts:
#   docker run -p 8000:8000 -v chairside-data:/app/var -e CHAIRSIDE_SECRET_KEY=... \
#       chairside chairside serve --migrate --host 0.0.0.0 --port 8000
# The job scheduler alone, from the same image (it serves no HTTP: no health check):
#   docker run --no-healthcheck -e CHAIRSIDE_DATABASE_URL=... -e CHAIRSIDE_SECRET_KEY=... \
#       chairside chairside scheduler

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the locked requirements (with hashes) and the project's wheel ----------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore \
    UV_PYTHON_DOWNLOADS=never
WORKDIR /src
# The same uv as the Makefile's UV_VERSION.
ARG UV_VERSION=0.13.9
RUN python -m pip install --quiet "uv==${UV_VERSION}"

# Fails if uv.lock is out of date with pyproject.toml (run `make lock`); resolves nothing.
COPY pyproject.toml uv.lock README.md ./
RUN mkdir /dist \
 && uv export --no-config --locked --offline --quiet --no-dev --no-emit-project \
        --format requirements.txt --output-file /dist/requirements.txt

COPY . .
RUN python -m pip wheel --quiet --no-deps --wheel-dir /dist .

# --- runtime: the locked dependencies and the wheel; no compilers, no source tree --------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore

# Dependencies first, so a code change reuses this layer.
COPY --from=build /dist/requirements.txt /tmp/requirements.txt
RUN python -m pip install --quiet --require-hashes --no-deps --only-binary :all: \
        -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# The wheel carries app, core, patients, scheduling, insurance, pharmacy and migrations (with its
# versions/), which is all `chairside migrate` reads.
COPY --from=build /dist/*.whl /tmp/
RUN python -m pip install --quiet --no-deps --no-index /tmp/chairside-*.whl \
 && rm /tmp/chairside-*.whl \
 && python -m pip check \
 && useradd --create-home --uid 10001 chairside \
 && mkdir -p /app/var && chown chairside /app/var

# The default SQLite database (sqlite:///var/chairside.db) lives in /app/var; mount a volume
# there to keep it, or set CHAIRSIDE_DATABASE_URL to PostgreSQL.
WORKDIR /app
# Numeric, so an orchestrator can tell the user is not root (runAsNonRoot).
USER 10001
ENV CHAIRSIDE_ENVIRONMENT=production
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["chairside", "serve", "--host", "0.0.0.0", "--port", "8000"]
