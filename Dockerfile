# The product's source without the development stand-ins (fake Twilio, localstripe layer, demo seed),
# tests and benchmarks: the production image never ships them.
FROM python:3.11-slim AS source
WORKDIR /src
COPY . .
RUN rm -rf devservices tests bench

FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STATIC_ROOT=/app/staticfiles
# pg_dump/pg_restore for `manage.py agency_dump` / `agency_restore`, of the same major version as the server in
# docker-compose.yml (pg_dump refuses a newer server): PostgreSQL's own apt repository, since Debian's is older.
ARG PG_MAJOR=16
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && install -d /usr/share/postgresql-common/pgdg \
    && curl -fsSo /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc https://www.postgresql.org/media/keys/ACCC4CF8.asc \
    && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt $(. /etc/os-release && echo $VERSION_CODENAME)-pgdg main" \
       > /etc/apt/sources.list.d/pgdg.list \
    && apt-get update && apt-get install -y --no-install-recommends postgresql-client-${PG_MAJOR} \
    && apt-get purge -y curl && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=source /src/ ./
RUN pip install --no-cache-dir -e . && python manage.py collectstatic --noinput
EXPOSE 8000
CMD ["gunicorn", "rebill.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--max-requests", "1000"]

# `docker compose --profile dev`: the product plus the stand-ins (localstripe).
FROM app AS dev
COPY devservices ./devservices

# The default target.
FROM app AS production
