# The reference image: one image for web, every worker and beat (the command differs).
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Chromium drives Vintage & Rare (Playwright with /usr/bin/chromium); Pango, HarfBuzz and fonts
# lay out the PDFs (WeasyPrint); poppler-utils is what the document tests read PDFs with.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        chromium libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are baked into the image (whitenoise serves them); the values below exist only for this step.
RUN DJANGO_ENV=production DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=build \
    FIELD_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= DATABASE_URL=sqlite:////tmp/build.sqlite3 \
    DJANGO_STATIC_ROOT=/app/static python manage.py collectstatic --noinput \
    && rm -f /tmp/build.sqlite3

RUN useradd --create-home --uid 10001 backoffice && mkdir -p /app/var && chown -R backoffice /app/var
USER backoffice

ENV DJANGO_ENV=production DJANGO_STATIC_ROOT=/app/static WEB_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD curl -fsS http://127.0.0.1:8000/health/live/ || exit 1
CMD ["sh", "-c", "gunicorn config.wsgi --bind ${WEB_BIND} --workers ${WEB_CONCURRENCY:-2} --access-logfile -"]
