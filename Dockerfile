# Chairside: one image for the API (default) and, later, `chairside scheduler`.
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

# Dependencies first, so code changes reuse this layer.
COPY pyproject.toml README.md ./
RUN mkdir -p app scheduling insurance migrations \
 && touch app/__init__.py scheduling/__init__.py insurance/__init__.py migrations/__init__.py \
 && pip install . \
 && pip uninstall -y chairside

COPY alembic.ini ./
COPY app ./app
COPY scheduling ./scheduling
COPY insurance ./insurance
COPY migrations ./migrations
RUN pip install --no-deps -e . \
 && useradd --create-home --uid 10001 chairside \
 && mkdir -p /app/var && chown chairside /app/var

USER chairside
ENV CHAIRSIDE_ENVIRONMENT=production
EXPOSE 8000
CMD ["chairside", "serve", "--host", "0.0.0.0", "--port", "8000"]
