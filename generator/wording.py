"""The dashboard's words for what the validator and the services refuse.

The API answers in its own terse, stable words ("must be at least 3 characters"), which scripts and
tests rely on and which stay exactly as they are. The dashboard says the same thing to a person, next
to the field at fault: what is wrong and what to do ("Enter a prompt of at least 3 characters.").
Messages without a rule here are shown as the API says them, as a sentence.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.conf import settings

from generator.errors import GeneratorError, InsufficientCredits, RateLimited

Rule = tuple[str | None, re.Pattern[str], Callable[[re.Match[str]], str]]


def _ports() -> str:
    ports = [str(p) for p in sorted(settings.GENERATOR_FETCH_PORTS)]
    return " and ".join(ports) if len(ports) <= 2 else ", ".join(ports[:-1]) + " and " + ports[-1]


def _rule(field: str | None, pattern: str, say: str | Callable[[re.Match[str]], str]) -> Rule:
    return field, re.compile(pattern), (say if callable(say) else lambda m: say.format(*m.groups()))


PHOTO_LINK = "Copy the photo's link again; it looks like https://shop.example/photo.jpg."

# (form field or None for any, pattern of the API's message, what the dashboard says), first match wins.
RULES: list[Rule] = [
    _rule("prompt", r"^must be at least (\d+) characters$", "Enter a prompt of at least {} characters."),
    _rule(
        "prompt",
        r"^must be at most (\d+) characters \(got (\d+)\)$",
        "Shorten the prompt to {} characters (it has {}).",
    ),
    _rule(
        "guidelines",
        r"^must be at least (\d+) characters$",
        "Enter guidelines of at least {} characters, or leave them empty.",
    ),
    _rule(
        "negative_prompt",
        r"^must be at least (\d+) characters$",
        "Enter at least {} characters of what to avoid, or leave it empty.",
    ),
    _rule(None, r"^must be at most (\d+) characters \(got (\d+)\)$", "Shorten this to {} characters (it has {})."),
    _rule("url", r"^must not be empty$", "Enter the link to the photo. " + PHOTO_LINK),
    _rule("url", r"^is required$", "Enter the link to the photo. " + PHOTO_LINK),
    _rule(
        "storage_input",
        r"^(must not be empty|is required)$",
        "Pick a photo in a storage above, or type its storage://name/path.",
    ),
    _rule(
        "url",
        r"^port (\d+) is not allowed",
        lambda m: (
            f"This link uses port {m[1]}, and photos can only be fetched from the standard web ports "
            f"({_ports()}). Use a link without “:{m[1]}”, or download the photo and upload it here."
        ),
    ),
    _rule(
        "url",
        r"^only http and https URLs are allowed",
        "Enter a web link that starts with https:// (or http://), or upload the photo.",
    ),
    _rule(
        "url",
        r"^URLs with user information are not allowed",
        "Remove the user name and password (the part before “@”) from the link.",
    ),
    _rule(
        "url",
        r"^URL points to a private, loopback or reserved address",
        "This link points inside a private network, where we cannot fetch photos. Use a public link, or upload the photo.",
    ),
    _rule("url", r"^URL contains whitespace or control characters", "Remove the spaces from the link. " + PHOTO_LINK),
    _rule(
        "url",
        r"^URL (is malformed|has no host|host is not a valid name|is empty)",
        "This is not a complete web link. " + PHOTO_LINK,
    ),
    _rule(
        None,
        r"^no storage named '(.+)' in this team$",
        "There is no storage called “{}” in this team: pick one in the list, or connect it on the Storages page.",
    ),
    _rule(
        "storage_input",
        r"^must name an image object, not a folder",
        "This is a folder: open it and pick a photo inside.",
    ),
    _rule(
        "output_path",
        r"^must end in '/' \(a folder\) or '\.mp4'",
        "End the path with / to save into a folder, or with .mp4 to name the file.",
    ),
    _rule("guidance_scale", r"^must be", "Set the guidance between 0 and 1."),
    _rule("duration", r"^must be 5 or 10", "Choose 5 or 10 seconds."),
    _rule("aspect_ratio", r"^must be", "Choose one of the shapes: the photo's own, 16:9, 9:16, 1:1 or 4:5."),
    _rule("resolution", r"^must be", "Choose 1080p or 720p."),
    _rule("background", r"^must be", "Choose a background from the list."),
    _rule("background_colour", r"^must be", "Pick a colour, or type one as # and six hex digits, like #1A2B3C."),
    _rule(
        "upload",
        r"^the file is not a JPEG, PNG, WEBP or HEIF image",
        "This file is not a photo we can use: choose a JPEG, PNG, WEBP or HEIC image.",
    ),
    _rule("upload", r"^the image is larger than (\d+) MB", "This photo is larger than {} MB: choose a smaller one."),
    _rule(
        "upload",
        r"^the team's upload area is full: (\d+) of (\d+) MB used; uploads are removed (\d+) days",
        "This team's upload space is full ({} of {} MB used). Uploaded photos are removed {} days after they "
        "were uploaded, or as soon as their job is cancelled or fails: try again later, or pick a photo in a "
        "storage instead.",
    ),
    _rule(
        "upload",
        r"^the image has more than ([\d,]+) pixels",
        "This photo has more than {} pixels: choose a smaller one, or scale it down first.",
    ),
    # The team's webhook
    _rule(
        "webhook_url",
        r"^port (\d+) is not allowed",
        lambda m: f"Webhooks can only use the standard web ports ({_ports()}); this link uses port {m[1]}.",
    ),
    _rule(
        "webhook_url",
        r"^only http and https URLs are allowed",
        "Enter a web link that starts with https:// (or http://).",
    ),
    _rule(
        "webhook_url",
        r"(private, loopback or reserved|cloud metadata)",
        "This link points inside a private network; webhooks can only go to a public address.",
    ),
    _rule("webhook_url", r"^URL", "This is not a complete web link; it looks like https://example.com/hooks/video."),
    _rule("webhook_url", r"^at most (\d+) characters", "Shorten the link to {} characters."),
    # Storages
    _rule(
        "name",
        r"^must be 1\.\.50 characters",
        "Use 1 to 50 letters, digits, - or _ (starting with a letter or a digit), e.g. “shop-photos”.",
    ),
    _rule(
        "name",
        r"^a storage with this name already exists",
        "This team already has a storage with this name: choose another.",
    ),
    _rule("region", r"^must look like us-east-1", "Enter a region code such as eu-central-1, or leave it empty."),
    _rule("access_key", r"^is required", "Enter the access key."),
    _rule("secret_access_key", r"^is required", "Enter the secret access key."),
]


def plain(field: str | None, message: str, *, value: str = "") -> str:
    """Say a validator's or service's message about a form field in plain words."""
    if field == "bucket" and message.startswith("is required: 3..222"):
        if not value.strip():
            return "Enter the bucket's name."
        return (
            f"A bucket name has 3 to 222 characters: lowercase letters, digits, dots, hyphens and "
            f"underscores (“{value.strip()[:60]}” has {len(value.strip())})."
        )
    for rule_field, pattern, say in RULES:
        if rule_field in (None, field):
            match = pattern.search(message)
            if match:
                return say(match)
    return sentence(message)


def sentence(message: str) -> str:
    """Capitalise a message and end it with a full stop."""
    message = message.strip()
    if not message:
        return message
    message = message[0].upper() + message[1:]
    return message if message[-1] in ".!?" else message + "."


def refusal(exc: GeneratorError) -> str:
    """Explain a refused submission (rate limit, credits, cap): what happened, that nothing was charged, what next."""
    if isinstance(exc, RateLimited):
        rate = exc.rate
        return (
            f"Too many videos started at once: this team may start {rate.per_second} per second and "
            f"{rate.per_minute} per minute. Nothing was charged. Try again in {max(1, rate.reset_s)} s."
        )
    if isinstance(exc, InsufficientCredits) and exc.cap is not None:
        return (
            f"You have used {exc.spent} of your {exc.cap} credits this month; this video costs {exc.cost}. "
            "Nothing was charged. Your cap resets on the 1st, and a team owner or admin can raise it."
        )
    if isinstance(exc, InsufficientCredits) and exc.balance is not None:
        return (
            f"The team has {exc.balance} credits left; this video costs {exc.cost}. Nothing was charged. "
            "Ask your operator to add credits (or wait for the monthly allowance), then try again."
        )
    return sentence(exc.message) + " Nothing was charged."
