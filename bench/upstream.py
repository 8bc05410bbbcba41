"""No worker is held by upstream jobs: many jobs on a slow loopback fal queue, two worker processes.

Starts, in a fresh data folder with its own SQLite file: a loopback fake of fal's queue API
(tests/fakes/fal.py, the documented shapes) in which every job takes `--seconds` of wall clock,
all in parallel, as a real model farm would; and `--clusters` `manage.py qcluster` processes with
one worker each (two machines' worth of workers, sharing the database). After the clusters have
idled for a while (their idle CPU is measured), `--jobs` jobs on a fal connection are submitted
through the create service, and the bench waits until every one is DONE. It prints, side by side:

- wall time from the first submit to the last DONE, against one job's upstream time and against
  what workers held for the whole wait would need (jobs x seconds / workers);
- CPU, two ways:
  * the poll tasks' own CPU: each `upstream_poll_task` logs the process_time it spent
    (services/upstream_jobs.py), and each finished job the part spent downloading, remuxing,
    postering and storing its video; summed here over both clusters' logs;
  * both clusters' processes (sentinel, worker, monitor, pusher, ticker thread) from /proc
    (utime+stime, and those of reaped children), before the first submit and after the last
    DONE, less the idle CPU of the same length measured before;
- looks per job, and how long after the upstream finished each job was DONE.

It also checks what it claims: every job DONE with a stored video, each submitted upstream once.
`--json` prints the figures as one JSON object (tests/test_upstream_e2e.py runs a small version).
Usage: .venv/bin/python bench/upstream.py [--jobs 100] [--seconds 20] [--clusters 2] [--idle 8] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import support  # noqa: E402
from tests.loopback import LoopbackServer, Route  # noqa: E402

POLL_LINE = re.compile(r"upstream poll of (\d+) jobs: ([\d.]+) ms CPU")
STORED_LINE = re.compile(r"the upstream's video stored: ([\d.]+) ms CPU")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def group_cpu_s(leader: int) -> float:
    """CPU seconds of every process in `leader`'s process group, with those of children it reaped."""
    from tests.harness import process_group_stats

    # utime, stime, cutime, cstime
    return (
        sum(sum(int(value) for value in fields[11:15]) for fields in process_group_stats(leader).values()) / CLOCK_TICKS
    )


def run(data_dir: str, *, jobs: int, seconds: float, clusters: int, idle_s: float = 8.0) -> dict:
    """Run the bench in `data_dir`; return its figures."""
    upstream = LoopbackServer()
    support.setup_django(
        data_dir,
        GENERATOR_FETCH_ALLOW_HOSTS=f"127.0.0.1:{upstream.port}",
        GENERATOR_WORKERS="1",
        PYTHONUNBUFFERED="1",
    )
    import logging

    from django.core.management import call_command
    from django.db.models import Max, Min
    from django.utils.dateparse import parse_datetime

    from generator.contract.generate import GenerateRequest
    from generator.models import Generation, Team
    from generator.services.billing import credits_grant
    from generator.services.generations import generation_create
    from tests.fakes.fal import FakeFal, make_fal_connection
    from tests.harness import kill_cluster, start_cluster, wait_for
    from tests.test_worker import png_bytes

    logging.getLogger("django-q").setLevel(logging.WARNING)  # one "Enqueued" line per submitted job
    call_command("migrate", verbosity=0)
    fake = FakeFal(upstream)
    fake.job_seconds = seconds
    upstream.routes["/photo.png"] = Route(body=png_bytes((400, 300)), headers={"Content-Type": "image/png"})
    team = Team.objects.create(name="Bench", slug="bench", rate_per_second=10_000, rate_per_minute=100_000)
    credits_grant(team=team, amount=jobs * 100, reason="bench")
    make_fal_connection(team, fake)

    logs = [Path(data_dir) / f"cluster-{index}.log" for index in range(clusters)]
    handles = [path.open("w") for path in logs]
    processes = [start_cluster(dict(os.environ), log=handle) for handle in handles]
    try:
        assert wait_for(lambda: all("running." in path.read_text() for path in logs), 60), "the clusters did not start"
        idle_from = sum(group_cpu_s(process.pid) for process in processes)
        time.sleep(idle_s)
        idle_rate = (sum(group_cpu_s(process.pid) for process in processes) - idle_from) / idle_s
        cpu_before = sum(group_cpu_s(process.pid) for process in processes)
        prompts = [f"steam rising, job {index:03}" for index in range(jobs)]
        started = time.monotonic()
        for prompt in prompts:
            body = {"input": upstream.url("/photo.png"), "options": {"prompt": prompt, "engine": "fal"}}
            generation_create(team=team, request=GenerateRequest.parse(body))
        submitted_in = time.monotonic() - started

        def finished() -> bool:
            return not Generation.objects.filter(status=Generation.Status.PROCESSING).exists()

        assert wait_for(finished, 600), "jobs did not finish within 10 minutes"
        wall = time.monotonic() - started
        cpu_run = sum(group_cpu_s(process.pid) for process in processes) - cpu_before
    finally:
        for process in processes:
            kill_cluster(process)
        for handle in handles:
            handle.close()
        upstream.close()

    statuses = Counter(Generation.objects.values_list("status", flat=True))
    assert statuses == {"DONE": jobs}, statuses
    assert all(Generation.objects.values_list("video_name", flat=True)), "a DONE job without a video"
    sent = Counter(job.body.get("prompt") for job in fake.submits())
    assert sent == Counter(prompts), "a job was not submitted upstream exactly once"
    span = Generation.objects.aggregate(first=Min("created_at"), last=Max("completed_at"))
    text = "\n".join(path.read_text() for path in logs)
    polls = [(int(count), float(ms)) for count, ms in POLL_LINE.findall(text)]
    stored = [float(ms) for ms in STORED_LINE.findall(text)]
    looks = sum(count for count, _ in polls)
    # How long after the upstream finished (its submit + `seconds`) each job was DONE here.
    late = [
        (completed - parse_datetime(state["submitted_at"])).total_seconds() - seconds
        for completed, state in Generation.objects.values_list("completed_at", "upstream_state")
    ]
    sent_at = [
        parse_datetime(state["submitted_at"]) for state in Generation.objects.values_list("upstream_state", flat=True)
    ]
    return {
        "jobs": jobs,
        "upstream_seconds": seconds,
        "workers": clusters,
        "wall_s": round(wall, 2),
        "first_submit_to_last_done_s": round((span["last"] - span["first"]).total_seconds(), 2),
        "submits_took_s": round(submitted_in, 2),
        "all_upstream_after_s": round((max(sent_at) - span["first"]).total_seconds(), 2),
        "held_workers_would_take_s": jobs * seconds / clusters,
        "poll_tasks": len(polls),
        "looks_per_job": round(looks / jobs, 2),
        "poll_cpu_ms_per_job": round(sum(ms for _, ms in polls) / jobs, 2),
        "store_cpu_ms_per_job": round(sum(stored) / jobs, 2),
        "waiting_look_cpu_ms": round((sum(ms for _, ms in polls) - sum(stored)) / max(1, looks - len(stored)), 2),
        "cluster_cpu_s": round(cpu_run, 2),
        "cluster_idle_cpu_s": round(idle_rate * wall, 2),
        "cluster_cpu_ms_per_job": round((cpu_run - idle_rate * wall) * 1000 / jobs, 1),
        "done_after_upstream_s": {
            "median": round(statistics.median(late), 2),
            "max": round(max(late), 2),
        },
    }


def report(figures: dict) -> None:
    jobs, seconds, workers = figures["jobs"], figures["upstream_seconds"], figures["workers"]
    print(f"{jobs} jobs on fal (loopback fake), each {seconds:g} s upstream, {workers} worker processes")
    print(f"({workers} qclusters of one worker each, one SQLite file; 2-core machine shared with other work)")
    print()
    print(f"{'':<44}{'seconds':>10}")
    print(f"{'wall time, first submit to last DONE':<44}{figures['wall_s']:>10.1f}")
    print(f"{'  of which creating them all here':<44}{figures['submits_took_s']:>10.1f}")
    print(f"{'  the last one submitted upstream after':<44}{figures['all_upstream_after_s']:>10.1f}")
    print(f"{'one job upstream':<44}{seconds:>10.1f}")
    print(f"{'workers held for the whole wait would need':<44}{figures['held_workers_would_take_s']:>10.1f}")
    late = figures["done_after_upstream_s"]
    print(f"{'DONE after the upstream finished, median':<44}{late['median']:>10.1f}")
    print(f"{'  max':<44}{late['max']:>10.1f}")
    print()
    print(f"CPU per job (looks per job: {figures['looks_per_job']}, in {figures['poll_tasks']} poll tasks)")
    print(f"{'':<56}{'ms/job':>10}")
    print(f"{'poll tasks, their logged process_time':<56}{figures['poll_cpu_ms_per_job']:>10.1f}")
    print(f"{'  of which download, remux, poster, store':<56}{figures['store_cpu_ms_per_job']:>10.1f}")
    print(f"{'  one look at a job still running (ms per look)':<56}{figures['waiting_look_cpu_ms']:>10.2f}")
    print(
        f"{'both clusters, /proc, less idle (fetch, submit, all)':<56}{figures['cluster_cpu_ms_per_job']:>10.1f}"
        f"   ({figures['cluster_cpu_s']:.1f} s in all, {figures['cluster_idle_cpu_s']:.1f} s of it idle cost)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--clusters", type=int, default=2)
    parser.add_argument("--idle", type=float, default=8.0, help="seconds the clusters idle first (their idle CPU)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-upstream-") as data_dir:
        figures = run(data_dir, jobs=args.jobs, seconds=args.seconds, clusters=args.clusters, idle_s=args.idle)
    if args.json:
        print(json.dumps(figures))
    else:
        report(figures)


if __name__ == "__main__":
    main()
