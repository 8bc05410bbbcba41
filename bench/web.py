"""Gallery speed with 10,000 generations in a team: p50/p95 of the page through Django's test client.

Seeds a fresh file SQLite database (the embedded default) in a temporary folder, then times
GET /gallery/ (first page, a deep page, a member filter) as a logged-in member. Target: p50 <= 50 ms.
Usage: .venv/bin/python bench/web.py [--generations 10000] [--runs 60]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench import support  # noqa: E402

TARGET_P50_MS = 50.0


def setup_django(data_dir: str) -> None:
    support.setup_django(data_dir)
    from django.conf import settings

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def seed(n: int):
    from django.core.management import call_command
    from django.utils import timezone

    from generator.models import Generation, Membership, Team, User
    from generator.services.billing import credits_grant

    call_command("migrate", verbosity=0)
    team = Team.objects.create(name="Bench", slug="bench")
    credits_grant(team=team, amount=1_000_000, reason="bench")
    users = [
        User.objects.create_user(email=f"member{i}@example.com", password="x", name=f"Member {i}") for i in range(5)
    ]
    for i, user in enumerate(users):
        Membership.objects.create(team=team, user=user, role="owner" if i == 0 else "member")
    other = Team.objects.create(name="Other", slug="other")
    now = timezone.now()
    statuses = ["DONE"] * 8 + ["ERROR", "CANCELLED"]
    rows = []
    for i in range(n):
        status = statuses[i % len(statuses)]
        created = now - timedelta(minutes=7 * i)
        rows.append(
            Generation(
                team=team if i % 20 else other,
                created_by=users[i % len(users)],
                request={
                    "input": f"https://shop.example/p/{i}.jpg",
                    "options": {
                        "prompt": f"slow zoom in, light sweep #{i}",
                        "duration": 5,
                        "guidance_scale": 0.5,
                    },
                },
                status=status,
                stage={"DONE": "done", "ERROR": "error", "CANCELLED": "cancelled"}[status],
                progress=100 if status == "DONE" else 0,
                duration=5,
                cost=35,
                created_at=created,
                completed_at=created + timedelta(seconds=20),
                video_name=f"videos/bench/{i}.mp4" if status == "DONE" else "",
                poster_name=f"posters/{i}.jpg" if status == "DONE" else "",
            )
        )
    Generation.objects.bulk_create(rows, batch_size=2000)
    return team, users


def time_get(client, url: str, runs: int, headers: dict) -> list[float]:
    client.get(url, headers=headers)  # warm caches (templates, connection)
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.status_code
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--generations", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=60)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-web-") as data_dir:
        setup_django(data_dir)
        from django.db import connection
        from django.test import Client
        from django.test.utils import CaptureQueriesContext

        from generator.models import Generation

        started = time.perf_counter()
        team, users = seed(args.generations)
        in_team = Generation.objects.filter(team=team).count()
        print(
            f"seeded {args.generations} generations ({in_team} in the measured team) in {time.perf_counter() - started:.1f} s"
        )
        client = Client()
        client.force_login(users[1])
        pages = (in_team + 23) // 24
        cases = [
            ("gallery, first page", "/gallery/", {}),
            (f"gallery, page {pages // 2}", f"/gallery/?page={pages // 2}", {}),
            (
                "gallery, member filter",
                f"/gallery/?member={users[2].pk}&status=DONE",
                {},
            ),
            ("gallery, htmx fragment", "/gallery/?status=DONE", {"HX-Request": "true"}),
        ]
        first_p50 = None
        for label, url, headers in cases:
            with CaptureQueriesContext(connection) as queries:
                client.get(url, headers=headers)
            query_count = len(queries)
            samples = time_get(client, url, args.runs, headers)
            p50 = statistics.median(samples)
            p95 = statistics.quantiles(samples, n=20)[18]
            first_p50 = first_p50 if first_p50 is not None else p50
            print(f"{label:28s} p50 {p50:6.1f} ms   p95 {p95:6.1f} ms   {query_count} queries")
        verdict = "OK" if first_p50 <= TARGET_P50_MS else "SLOW"
        print(f"gallery p50 {first_p50:.1f} ms (target <= {TARGET_P50_MS:.0f} ms): {verdict}")
        return 0 if first_p50 <= TARGET_P50_MS else 1


if __name__ == "__main__":
    sys.exit(main())
