"""Template filters for a generation's format (shape badge, resolution, loop, size): docs/formats.md."""

from __future__ import annotations

from django import template

from generator.models import Generation
from generator.shapes import JobFormat, job_format, shape_choices

register = template.Library()


@register.filter(name="job_format")
def job_format_filter(generation: Generation) -> JobFormat:
    """Describe a generation's format for a badge or a table row."""
    return job_format(generation)


@register.simple_tag
def shape_picker(form) -> dict:
    """The shape picker of a Generate or Batch form: every shape with its size, the chosen one and its size."""
    resolution = form["resolution"].value() or "1080p"
    shapes = shape_choices(resolution=resolution)
    chosen = form["aspect_ratio"].value() or "source"
    size = next((shape.size for shape in shapes if shape.value == chosen), "")
    return {"shapes": shapes, "chosen": chosen, "size": size}
