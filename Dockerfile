# DynChat: one image for web (gunicorn), worker and beat (Celery). See docker-compose.yml.
FROM python:3.11-slim

# The settings find templates/, static/ and widget/openapi.json next to the code, so the code is
# imported from the source tree in /app (PYTHONPATH) rather than from the installed copy.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONPATH=/app \
    DYNCHAT_VAR_DIR=/app/var

WORKDIR /app
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home dynchat

# The dependencies in their own layer, so a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .
# The static files are collected into the image; the key only lets the settings load.
RUN pip install --no-deps . \
    && SECRET_KEY=collectstatic-only-not-a-secret python manage.py collectstatic --noinput \
    && mkdir -p var/emails \
    && chown -R dynchat:dynchat var

USER dynchat
EXPOSE 8000
CMD ["gunicorn", "dynchat.wsgi:application", "--bind", "0.0.0.0:8000", "--access-logfile", "-"]
