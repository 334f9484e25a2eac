"""`cloudless call`: call a deal's function through a gateway."""

from __future__ import annotations

import json
import sys

import click
import httpx

from cloudless.cli.common import check_gateway_url

__all__ = ["call"]

DEFAULT_GATEWAY = "http://127.0.0.1:8080"


@click.command()
@click.argument("deal_id", type=click.IntRange(1))
@click.argument("function")
@click.option("--input", "input_text", default=None, help="Input JSON, e.g. '{\"text\": \"hi\"}'.  [default: {}]")
@click.option("--input-file", type=click.File("rb"), default=None, help="Read the input JSON from a file ('-' for stdin).")
@click.option("--gateway", default=DEFAULT_GATEWAY, show_default=True, help="Gateway base URL.")
@click.option("--timeout", type=click.FloatRange(0.1), default=60.0, show_default=True, help="Seconds to wait for the result.")
@click.option("--show-receipt", is_flag=True, help="Print the signed receipt too.")
def call(
    deal_id: int,
    function: str,
    input_text: str | None,
    input_file: click.utils.LazyFile | None,
    gateway: str,
    timeout: float,
    show_receipt: bool,
) -> None:
    """Call FUNCTION of deal DEAL_ID and print its JSON output."""
    if input_text is not None and input_file is not None:
        raise click.UsageError("pass either --input or --input-file, not both")
    check_gateway_url(gateway)
    body = input_file.read() if input_file is not None else (input_text or "{}").encode()
    try:
        json.loads(body)
    except ValueError as error:
        source = f"--input-file {input_file.name}" if input_file is not None else "--input"
        raise click.UsageError(f"{source} is not valid JSON ({error}): e.g. --input '{{\"text\": \"hello\"}}'") from error

    url = f"{gateway.rstrip('/')}/deals/{deal_id}/functions/{function}"
    try:
        response = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=timeout)
    except httpx.HTTPError as error:
        raise click.ClickException(f"gateway at {gateway} not reachable ({error}): start it with `cloudless gateway up`") from error

    try:
        payload = response.json()
    except ValueError:
        raise click.ClickException(f"gateway returned HTTP {response.status_code} without JSON: {response.text[:200]}")

    if response.status_code != 200:
        error = payload.get("error") or payload.get("detail") or payload
        message = error.get("message") if isinstance(error, dict) else str(error)
        raise click.ClickException(f"call failed with HTTP {response.status_code}: {message}")

    click.echo(json.dumps(payload.get("output"), indent=2))
    if show_receipt:
        click.echo(json.dumps(payload.get("receipt"), indent=2), file=sys.stderr)
