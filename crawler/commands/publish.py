"""`publish --to s3://bucket/prefix`: upload the committed archive to S3, incrementally."""

from __future__ import annotations

import argparse
import sys

from crawler.commands.common import EXIT_OK, add_archive_option, archive_path
from crawler.commands.formats import emit


def s3_url(text: str) -> str:
    """An argparse type: `text` when it is an s3://bucket/prefix URL."""
    from pipelines.core.storage import split_s3_url

    try:
        split_s3_url(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "publish",
        help="upload the committed archive to S3 (only what is not there yet)",
        description="Upload the archive's committed runs to an S3 bucket, for readers "
        "elsewhere (`open_archive('s3://bucket/prefix')`). Only files that committed "
        "manifests list are uploaded, and only those the bucket lacks (same path and "
        "size): data files first, then the manifests in commit order, then a checkpoint, "
        "so a reader never sees a manifest whose files are missing. Nothing in the bucket "
        "is moved or deleted. Takes no lock: publishing works while a crawl is writing. "
        "The endpoint, region and credentials come from the AWS environment variables "
        "(AWS_ENDPOINT_URL, AWS_REGION or AWS_DEFAULT_REGION, AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY) or ~/.aws. Exit 3 when S3 cannot be reached or refuses.",
    )
    add_archive_option(parser)
    parser.add_argument(
        "--to",
        metavar="s3://BUCKET/PREFIX",
        required=True,
        type=s3_url,
        help="where to publish (the bucket must exist)",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pipelines.core.publish import publish
    from pipelines.core.storage import ObjectPath

    report = publish(archive_path(args), ObjectPath.from_url(args.to))
    size = _human_bytes(report.uploaded_bytes)
    emit(
        f"published {report.runs} run{'s' if report.runs != 1 else ''} to "
        f"{report.destination}: {len(report.uploaded)} files uploaded ({size}), "
        f"{report.already_there} already there\n"
    )
    if report.not_kept:
        print(
            f"warning: {len(report.not_kept)} files replaced by compactions were not "
            "uploaded: the local archive no longer keeps them (no reader of the runs "
            "published needs them)",
            file=sys.stderr,
        )
    return EXIT_OK


def _human_bytes(size: int) -> str:
    if size < 1000:
        return f"{size} bytes"
    value = size / 1000
    for unit in ("kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} TB"
