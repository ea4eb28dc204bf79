"""gunicorn's settings for Tideline, read from the environment (see the README's table).

gunicorn reads ``./gunicorn.conf.py`` by itself when started from the repository root (the
image passes ``--config`` explicitly); options given on the command line win over this file.
"""

import os
import sys

#: All interfaces, so the kubelet's probes (pod IP) and the Dapr sidecar (loopback) reach it.
bind = [f"0.0.0.0:{int(os.environ.get('PORT', '8000'))}"]
#: Processes per pod or host; scale further with more pods (each worker holds its own pool
#: of database connections and runs its own background thread).
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
#: ASGI (todo_project.asgi) under uvicorn's worker: a page's live-updates stream
#: (``/live/``) is a coroutine, not a thread held for minutes. Django runs the synchronous
#: views in threads, one per request, so a thread's persistent connection would never be
#: reused: each request opens its own and closes it when it ends (``CONN_MAX_AGE=0``), and
#: a lost database is a fast 503 and a fast recovery. ``DATABASE_POOL`` trades that for
#: Django's connection pool (docs/deploy.md).
worker_class = "uvicorn_worker.UvicornWorker"
wsgi_app = "todo_project.asgi:application"
os.environ.setdefault("CONN_MAX_AGE", "0")
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
#: In-flight requests get this long after SIGTERM; keep it under the pod's
#: terminationGracePeriodSeconds (30 s by default).
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5

#: Never preload: the WSGI module starts the background worker thread (events/background.py),
#: which must run in each worker, not in the arbiter that forks them.
preload_app = False

#: Requests from these addresses may set X-Forwarded-Proto and friends. The default trusts
#: only loopback; behind an ingress controller set the controller's addresses, or ``*`` when
#: a NetworkPolicy admits nothing else.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")

accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

#: The workers' heartbeat files: in memory where /dev/shm exists (a container's root
#: filesystem may be read-only, and a disk-backed heartbeat can stall workers).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
#: No control socket: it would be created under $HOME, which the image's user does not have;
#: signals (SIGTERM, SIGHUP, TTIN/TTOU) manage the arbiter instead.
control_socket_disable = True


def worker_exit(server, worker) -> None:
    """Let the worker's background thread finish its batch and release the scheduler lock, so
    another worker takes over the periodic work at once."""
    background = sys.modules.get("events.background")
    if background is not None:
        background.worker.stop()
