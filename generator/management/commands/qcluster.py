"""qcluster: django-q2's cluster, plus the ticker thread that finds due work every second.

This command shadows django_q's own `qcluster` (the generator app is listed before django_q in
INSTALLED_APPS), so `manage.py qcluster` starts both; options are django_q's. The ticker starts
after the cluster has forked its processes, so no child inherits a running thread.
"""

from __future__ import annotations

import os
import time

from django_q.cluster import Cluster
from django_q.management.commands.qcluster import Command as DjangoQClusterCommand

from generator.services.ticker import Ticker

SUPERVISE_S = 0.5


class Command(DjangoQClusterCommand):
    help = "Start the django-q2 cluster and the generator's ticker (due upstream polls, batch dispatch)."

    def handle(self, *args, **options):
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
