"""qcluster: django-q2's cluster, plus the ticker thread that finds due work every second.

This command shadows django_q's own `qcluster` (the generator app is listed before django_q in
INSTALLED_APPS), so `manage.py qcluster` starts both; options are django_q's. The ticker starts
after the cluster has forked its processes, so no child inherits a running thread.

Before anything starts, the process lowers its own CPU priority to `GENERATOR_WORKER_NICE`
(default 10; 0 leaves it): every process the cluster forks (sentinel, pusher, monitor and each
worker, recycled ones too) inherits it, so renders yield the cores to the web server on a shared
machine (docs/queue.md).
"""

from __future__ import annotations

import os
import time

from django.conf import settings
from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from generator.services.ticker import Ticker

SUPERVISE_S = 0.5


def lower_priority(nice: int) -> int:
    """Raise this process's niceness to `nice` (never lower it: only root may); return the niceness now."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if nice > current:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    return os.getpriority(os.PRIO_PROCESS, 0)


class Command(DjangoQClusterCommand):
    help = "Start the django-q2 cluster and the generator's ticker (due upstream polls, batch dispatch)."

    def handle(self, *args, **options):
        lower_priority(settings.GENERATOR_WORKER_NICE)
        if options.get("cluster_name"):
            # django_q reads the alternative name from the environment before the cluster exists.
            os.environ["Q_CLUSTER_NAME"] = options["cluster_name"]
        cluster = Cluster()
        cluster.start()
        if options.get("run_once", False):
            cluster.stop()
            return
        ticker = Ticker()
        ticker.start()
        try:
            # The cluster's SIGINT/SIGTERM handler stops the sentinel on this thread; then we follow.
            while cluster.sentinel is not None and cluster.sentinel.is_alive():
                time.sleep(SUPERVISE_S)
        finally:
            ticker.stop()
