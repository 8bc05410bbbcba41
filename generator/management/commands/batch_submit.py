"""batch_submit TEAM --folder storage://name/dir/ | --csv FILE [--prompt TEXT] [--duration 5|10] [--output storage://name/dir/]"""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import CommandError

from generator.errors import ValidationFailed
from generator.services.batches import batch_create, batch_inputs_from_text

from ._base import OperatorCommand, team_named

DEFAULT_PROMPT = "slow zoom in, light sweep"


class Command(OperatorCommand):
    help = (
        "Start a batch for a team: every image of a storage folder, or the URLs of a CSV or text file "
        "(one per line; '-' reads standard input). Prints the batch id, item count and total cost; the "
        "items are then submitted at the team's rate by the running workers' ticker."
    )

    def add_arguments(self, parser):
        parser.add_argument("team")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument("--folder", help="storage://name/dir/ of the team")
        source.add_argument("--csv", help="a CSV or text file of image URLs or storage:// paths ('-' = stdin)")
        parser.add_argument("--recursive", action="store_true", help="with --folder: include subfolders")
        prompt = parser.add_mutually_exclusive_group()
        prompt.add_argument("--prompt", help=f"motion words (default: {DEFAULT_PROMPT!r})")
        prompt.add_argument("--auto", action="store_true", help="let the engine choose for each image")
        parser.add_argument("--guidelines", help="with --auto: words that steer the choice")
        parser.add_argument("--negative-prompt")
        parser.add_argument("--duration", type=int, choices=(5, 10), default=5)
        parser.add_argument("--guidance", type=float, default=0.5, help="0..1 (default 0.5)")
        parser.add_argument("--output", help="storage://name/dir/ for the videos (default: temporary links)")

    def handle(self, *args, team: str, **options):
        target = team_named(team)
        if options["guidelines"] and not options["auto"]:
            raise CommandError("--guidelines goes with --auto")
        prompt: str | dict = options["prompt"] or DEFAULT_PROMPT
        if options["auto"]:
            prompt = {"generate": True, **({"guidelines": options["guidelines"]} if options["guidelines"] else {})}
        body: dict = {
            "options": {"prompt": prompt, "duration": options["duration"], "guidance_scale": options["guidance"]}
        }
        if options["negative_prompt"]:
            body["options"]["negative_prompt"] = options["negative_prompt"]
        if options["output"]:
            body["output"] = options["output"]
        source: dict = {"via": "cli"}
        try:
            if options["folder"]:
                body.update(input_folder=options["folder"], recursive=options["recursive"])
            else:
                if options["recursive"]:
                    raise CommandError("--recursive goes with --folder")
                body["inputs"] = batch_inputs_from_text(self._read(options["csv"]))
                source["file"] = "stdin" if options["csv"] == "-" else Path(options["csv"]).name
            batch = batch_create(team=target, body=body, source=source)
        except ValidationFailed as exc:
            faults = "; ".join(f"{field}: {', '.join(messages)}" for field, messages in exc.details.items())
            raise CommandError(faults or exc.message) from None
        self.stdout.write(f"items: {batch.item_count}")
        self.stdout.write(f"total_cost: {batch.total_cost}")
        self.stdout.write(f"batch: {batch.pk}")

    @staticmethod
    def _read(path: str) -> str:
        if path == "-":
            return sys.stdin.read()
        try:
            return Path(path).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"cannot read {path}: {exc}") from None
