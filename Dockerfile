# syntax=docker/dockerfile:1
# Tideline: one image for every role. The command and the environment choose the role:
#   web (default)          gunicorn --config gunicorn.conf.py todo_project.asgi
#   migration              python manage.py migrate --noinput
#   relay                  python manage.py relay_events
#   consumers              the web command with EVENT_CONSUMERS=notifications (or recurrence)
#   celery worker          celery -A todo_project worker (only with CELERY_BROKER_URL)
#   celery beat            celery -A todo_project beat --schedule /var/lib/tideline/celerybeat-schedule
#                          (exactly one; its schedule file must be under TIDELINE_VAR_DIR)
# In Kubernetes give those as the container's `args`, never `command`: `command` replaces the
# ENTRYPOINT and with it tini. Build with `make image`.

# --- build: a virtualenv of the runtime requirements, the app, its collected static files --
FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Every runtime requirement ships wheels for CPython 3.11 on Linux: no compiler needed.
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir -r /tmp/requirements.txt
WORKDIR /app
COPY . .
# Hashed, compressed static files for WhiteNoise (STATIC_MANIFEST). The settings need a
# SECRET_KEY when DEBUG is off: a throwaway one, set for this command only, in a stage the
# final image does not inherit; TIDELINE_VAR_DIR points outside /app so nothing is left there.
RUN SECRET_KEY=collectstatic-only DEBUG=false TIDELINE_VAR_DIR=/tmp/var \
        STATIC_MANIFEST=true STATIC_ROOT=/app/staticfiles \
        /opt/venv/bin/python manage.py collectstatic --noinput --verbosity 0 \
    && /opt/venv/bin/python -m compileall -q /app

# --- runtime: the virtualenv and the app, read-only, run by an unprivileged user ----------
# The same base as the build stage: the virtualenv's python is its /usr/local/bin/python3.11.
FROM python:3.11-slim-bookworm AS runtime
# tini is PID 1: it forwards SIGTERM to the process and reaps zombies. Pinned to its upstream
# release; the Debian revision (binNMUs such as +b3) differs between architectures.
RUN apt-get update \
    && apt-get install -y --no-install-recommends 'tini=0.19.0-*' \
    && rm -rf /var/lib/apt/lists/*
# A fixed UID/GID, so a pod's securityContext (runAsUser, fsGroup) can name it.
RUN groupadd --system --gid 10001 tideline \
    && useradd --system --uid 10001 --gid tideline --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin tideline \
    && mkdir -p /var/lib/tideline \
    && chown tideline:tideline /var/lib/tideline
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
WORKDIR /app
# TIDELINE_VAR_DIR holds the scheduler lock (and, in the embedded default, SQLite): the one
# writable path besides /tmp, an emptyDir under a read-only root filesystem.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=todo_project.settings \
    TIDELINE_VAR_DIR=/var/lib/tideline \
    STATIC_MANIFEST=true \
    STATIC_ROOT=/app/staticfiles
USER 10001:10001
EXPOSE 8000
# No HEALTHCHECK: Kubernetes ignores it; the kubelet probes /healthz and /readyz instead.
ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["gunicorn", "--config", "gunicorn.conf.py", "todo_project.asgi"]
