# The reference image: one image for web, every worker and beat (the command differs).
# PYTHON_IMAGE: the base, the official image by default. Where Docker Hub is out of reach, any
# Debian bookworm image with Python 3.11 and its venv module (Debian: python3 + python3-venv) stands in:
#   docker build --build-arg PYTHON_IMAGE=local/python:3.11-bookworm -t backoffice:latest .
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1

# Chromium drives Vintage & Rare (Playwright with /usr/bin/chromium); Pango, HarfBuzz and fonts
# lay out the PDFs (WeasyPrint); libatomic1 is what Playwright's bundled node driver links to (without
# it the driver dies at start: 'libatomic.so.1: cannot open shared object file'); poppler-utils is what the document tests read PDFs with; curl
# is the health check.
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        chromium libatomic1 libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz-subset0 fonts-dejavu-core poppler-utils curl \
    && rm -rf /var/lib/apt/lists/*

# A virtualenv in both cases: Debian's own Python refuses `pip install` outside one
# (EXTERNALLY-MANAGED), and it keeps the app's packages apart from the base's.
ENV VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN python3 -m venv /opt/venv

WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt

COPY . .
# Static files are baked into the image (whitenoise serves them). Production settings insist on
# PostgreSQL and Redis URLs; collectstatic connects to neither, so the values below exist only for this step.
RUN DJANGO_ENV=production DJANGO_SECRET_KEY=collectstatic-only DJANGO_ALLOWED_HOSTS=build \
    FIELD_ENCRYPTION_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    DATABASE_URL=postgres://build@build.invalid/build REDIS_URL=redis://build.invalid:6379/0 \
    DJANGO_STATIC_ROOT=/app/static python manage.py collectstatic --noinput --verbosity 0

# The code stays root's (read-only to the app); the app writes only under /app/var. media exists
# here, owned by the app's user, so a fresh named volume mounted on it starts with that owner.
RUN useradd --create-home --uid 10001 backoffice \
    && mkdir -p /app/var/media \
    && chown -R backoffice /app/var
USER backoffice

ENV DJANGO_ENV=production DJANGO_STATIC_ROOT=/app/static WEB_BIND=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD curl -fsS http://127.0.0.1:8000/health/live/ || exit 1
CMD ["sh", "-c", "exec gunicorn config.wsgi --bind ${WEB_BIND} --workers ${WEB_CONCURRENCY:-2} --access-logfile -"]
