# The product's source without the development stand-ins (fake Twilio, localstripe layer, demo seed),
# tests and benchmarks: the production image never ships them.
FROM python:3.11-slim AS source
WORKDIR /src
COPY . .
RUN rm -rf devservices tests bench

FROM python:3.11-slim AS app
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 STATIC_ROOT=/app/staticfiles
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
