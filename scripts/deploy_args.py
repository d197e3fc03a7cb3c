"""Argument checks shared by the deploy scripts: names that end up in gcloud commands."""

from __future__ import annotations

import re

PROJECT = re.compile(r"^[a-z][a-z0-9\-]{4,28}[a-z0-9]\Z")
REGION = re.compile(r"^[a-z]+-[a-z]+[0-9]+\Z")
BUCKET = re.compile(r"^[a-z0-9][a-z0-9._\-]{1,220}[a-z0-9]\Z")
#: ``(default)`` or a named database: 4-63 lowercase letters, digits and hyphens.
DATABASE = re.compile(r"^(\(default\)|[a-z][a-z0-9\-]{2,61}[a-z0-9])\Z")


class UsageError(ValueError):
    """A bad argument, reported in one line before anything runs."""


def checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not pattern.match(value or ""):
        raise UsageError(f"{what} {value!r} is not valid")
    return value


def check_location(project: str, region: str, bucket: str) -> None:
    """``--project``, ``--region`` and ``--bucket``, which every deploy script takes."""
    checked(project, PROJECT, "--project")
    checked(region, REGION, "--region")
    checked(bucket, BUCKET, "--bucket")
