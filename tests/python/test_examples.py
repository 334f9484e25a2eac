"""The Rust examples in functions/examples, run through WasmRuntime.

The modules come from functions/dist, which a session fixture builds with
functions/build.sh when one is missing. Packages are built with the CLI's
packer, so the manifests record the function types that the SDK describes.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cloudless.cli import cli
from cloudless.cli.package import build_example_package
from cloudless.exceptions import GuestError
from cloudless.runtime import CallContext, LoadedPackage, WasmRuntime, read_package

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
DIST_DIR = FUNCTIONS_DIR / "dist"
EXAMPLES_DIR = FUNCTIONS_DIR / "examples"
MODULES = ("api", "context", "invoice", "limits", "money", "notify", "penguins", "text")

@pytest.fixture(scope="session")
def dist_dir() -> Path:
    """Return functions/dist, running functions/build.sh first if a module is missing."""
    missing = [name for name in MODULES if not (DIST_DIR / f"{name}.wasm").is_file()]
    if missing:
        completed = subprocess.run(
            ["bash", str(FUNCTIONS_DIR / "build.sh")], capture_output=True, text=True, timeout=1800, check=False
        )
        if completed.returncode != 0:
            pytest.fail(
                f"functions/build.sh failed with exit status {completed.returncode} while building {missing}:\n"
                f"{completed.stdout[-2000:]}\n{completed.stderr[-4000:]}"
            )
    return DIST_DIR


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    with WasmRuntime() as wasm_runtime:
        yield wasm_runtime


def load_example(runtime: WasmRuntime, dist_dir: Path, example: str) -> LoadedPackage:
    return runtime.load(build_example_package(EXAMPLES_DIR / example, dist_dir))


def call_json(runtime: WasmRuntime, package: LoadedPackage, function: str, value: Any, **options: Any) -> Any:
    result = runtime.call(package, function, json.dumps(value).encode(), **options)
    return json.loads(result.output)


@pytest.fixture(scope="module")
def notify(runtime: WasmRuntime, dist_dir: Path) -> LoadedPackage:
    return load_example(runtime, dist_dir, "notify")


@pytest.fixture(scope="module")
def api(runtime: WasmRuntime, dist_dir: Path) -> LoadedPackage:
    return load_example(runtime, dist_dir, "api")


@pytest.fixture(scope="module")
def invoice(runtime: WasmRuntime, dist_dir: Path) -> LoadedPackage:
    return load_example(runtime, dist_dir, "invoice")


# --- notify -----------------------------------------------------------------


def test_notify_email_escapes_values(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    output = call_json(
        runtime,
        notify,
        "format_notification",
        {
            "channel": "email",
            "event": {"kind": "call_failed", "name": "<script>x</script>", "function": "f", "deal_id": 3,
                      "error": "a & b"},
        },
    )
    assert output["subject"] == "Call of f failed"
    assert output["text"] == "Hello <script>x</script>,\n\nthe call of f in deal 3 failed: a & b"
    assert output["html"] == (
        "Hello &lt;script&gt;x&lt;/script&gt;,<br>\n<br>\nthe call of f in deal 3 failed: a &amp; b"
    )


def test_notify_subject_has_no_line_breaks(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    output = call_json(
        runtime,
        notify,
        "format_notification",
        {"channel": "email", "event": {"id": "1\r\nBcc: x@example.com"},
         "template": {"subject": "Order {{id}}", "body": "ok"}},
    )
    assert "\n" not in output["subject"]
    assert "\r" not in output["subject"]


def test_notify_sms_segments(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    event = {"kind": "payment_received", "name": "Ada", "amount": "5", "deal_id": 1}
    short = call_json(runtime, notify, "format_notification", {"channel": "sms", "event": event})
    assert short == {"channel": "sms", "text": "Hello Ada,\n\nwe received 5 USDC for deal 1.",
                     "encoding": "gsm7", "segments": 1}
    cyrillic = call_json(runtime, notify, "format_notification",
                         {"channel": "sms", "event": dict(event, name="Жанна" * 10)})
    assert cyrillic["encoding"] == "ucs2"
    assert cyrillic["segments"] == 2


def test_notify_chat_escapes_markdown(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    output = call_json(
        runtime,
        notify,
        "format_notification",
        {"channel": "chat", "event": {"who": "*bold* `code`"}, "template": {"body": "From {{who}}"}},
    )
    assert output == {"channel": "chat", "text": "From \\*bold\\* \\`code\\`"}


def test_notify_unknown_kind_error(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    with pytest.raises(GuestError) as raised:
        runtime.call(notify, "format_notification", b'{"channel": "sms", "event": {"kind": "nope"}}')
    assert 'no built-in template for event kind "nope"' in raised.value.guest_message


def test_notify_invalid_channel(runtime: WasmRuntime, notify: LoadedPackage) -> None:
    with pytest.raises(GuestError) as raised:
        runtime.call(notify, "format_notification", b'{"channel": "fax", "event": {}}')
    assert raised.value.guest_message.startswith("invalid input: unknown variant `fax`")


# --- api --------------------------------------------------------------------


def test_api_routes(runtime: WasmRuntime, api: LoadedPackage) -> None:
    assert call_json(runtime, api, "handle", {"method": "GET", "path": "/health"}) == {
        "status": 200, "body": {"status": "ok"}}
    product = call_json(runtime, api, "handle", {"method": "GET", "path": "/products/ink-blue"})
    assert product == {"status": 200, "body": {"sku": "ink-blue", "name": "Blue ink cartridge",
                                                "unit_price_cents": 999}}
    listing = call_json(runtime, api, "handle", {"method": "get", "path": "/products?page=1"})
    assert [item["sku"] for item in listing["body"]["products"]] == ["pen-1", "pad-a4", "ink-blue"]


def test_api_client_errors(runtime: WasmRuntime, api: LoadedPackage) -> None:
    missing = call_json(runtime, api, "handle", {"method": "GET", "path": "/products/nope"})
    assert missing == {"status": 404, "body": {"error": 'product "nope" not found'}}
    not_allowed = call_json(runtime, api, "handle", {"method": "PUT", "path": "/quotes"})
    assert not_allowed["status"] == 405
    assert not_allowed["body"]["allow"] == ["POST"]
    no_route = call_json(runtime, api, "handle", {"method": "GET", "path": "/admin"})
    assert no_route["status"] == 404


def test_api_quote(runtime: WasmRuntime, api: LoadedPackage) -> None:
    body = {"items": [{"sku": "pad-a4", "quantity": 4}], "coupon": "BULK25"}
    output = call_json(runtime, api, "handle", {"method": "POST", "path": "/quotes", "body": body})
    assert output["status"] == 200
    assert output["body"]["subtotal_cents"] == 1700
    assert output["body"]["discount_cents"] == 425
    assert output["body"]["total_cents"] == 1275


def test_api_quote_validation(runtime: WasmRuntime, api: LoadedPackage) -> None:
    body = {"items": [{"sku": "pen-1", "quantity": 1}, {"sku": "pen-1", "quantity": 20000}]}
    output = call_json(runtime, api, "handle", {"method": "POST", "path": "/quotes", "body": body})
    assert output == {"status": 422, "body": {"error": "quantity must be between 1 and 10000, got 20000",
                                              "field": "items[1].quantity"}}
    no_body = call_json(runtime, api, "handle", {"method": "POST", "path": "/quotes"})
    assert no_body["status"] == 400


def test_api_invalid_request(runtime: WasmRuntime, api: LoadedPackage) -> None:
    with pytest.raises(GuestError) as raised:
        runtime.call(api, "handle", b'{"method": "GET", "path": "health"}')
    assert raised.value.guest_message.startswith('invalid path "health"')
    with pytest.raises(GuestError) as unknown_field:
        runtime.call(api, "handle", b'{"method": "GET", "path": "/", "headers": {}}')
    assert "unknown field `headers`" in unknown_field.value.guest_message


# --- invoice: two modules ---------------------------------------------------


def test_invoice_links_two_modules(invoice: LoadedPackage) -> None:
    assert [entry.name for entry in invoice.manifest.modules] == ["money", "invoice"]
    facade_module = invoice.modules[-1][1]
    imports = {(item.module, item.name) for item in facade_module.imports}
    assert ("money", "line_total") in imports
    assert ("money", "percent_of") in imports


def test_invoice_total(runtime: WasmRuntime, invoice: LoadedPackage) -> None:
    output = call_json(
        runtime,
        invoice,
        "total",
        {
            "lines": [
                {"description": "pens", "unit_price_cents": 150, "quantity": 3},
                {"description": "ink", "unit_price_cents": 999, "quantity": 1},
            ],
            "tax_basis_points": 1900,
            "discount_basis_points": 1000,
        },
    )
    assert output == {
        "lines": [{"description": "pens", "amount_cents": 450}, {"description": "ink", "amount_cents": 999}],
        "subtotal_cents": 1449,
        "discount_cents": 145,
        "tax_cents": 248,
        "total_cents": 1552,
    }


def test_invoice_rounds_half_even(runtime: WasmRuntime, invoice: LoadedPackage) -> None:
    # 10 % of 125 is 12.5, which rounds to 12; 10 % of 135 is 13.5, which rounds to 14.
    for amount, tax in ((125, 12), (135, 14)):
        output = call_json(runtime, invoice, "total", {
            "lines": [{"description": "x", "unit_price_cents": amount, "quantity": 1}], "tax_basis_points": 1000})
        assert output["tax_cents"] == tax


def test_invoice_library_errors(runtime: WasmRuntime, invoice: LoadedPackage) -> None:
    line = {"description": "x", "unit_price_cents": 2**62, "quantity": 4}
    with pytest.raises(GuestError) as overflow:
        runtime.call(invoice, "total", json.dumps({"lines": [line], "tax_basis_points": 0}).encode())
    assert overflow.value.guest_message.startswith("lines[0]: unit_price_cents")
    valid = {"description": "x", "unit_price_cents": 1, "quantity": 1}
    with pytest.raises(GuestError) as rate:
        runtime.call(invoice, "total", json.dumps({"lines": [valid], "tax_basis_points": 20000}).encode())
    assert rate.value.guest_message == "tax_basis_points must be between 0 and 10000, got 20000"


# --- function types in the manifest -------------------------------------------


@pytest.mark.parametrize(
    ("example", "function", "input_type", "output_type"),
    [
        ("penguins", "summarize", "SummarizeRequest", "SummarizeResponse"),
        ("text", "fail", "json", "()"),
        ("limits", "echo", "json", "json"),
        ("notify", "format_notification", "NotificationRequest", "Notification"),
        ("api", "handle", "ApiRequest", "ApiResponse"),
        ("invoice", "total", "Invoice", "InvoiceTotal"),
        ("context", "log_levels", "LogRequest", "LogResponse"),
    ],
)
def test_manifest_function_types(
    dist_dir: Path, example: str, function: str, input_type: str, output_type: str
) -> None:
    manifest = read_package(build_example_package(EXAMPLES_DIR / example, dist_dir)).manifest
    entry = next(entry for entry in manifest.functions if entry.name == function)
    assert entry.input == input_type
    assert entry.output == output_type


def test_manifest_template_types_win(dist_dir: Path, tmp_path: Path) -> None:
    template = json.loads((EXAMPLES_DIR / "api" / "manifest.json").read_text())
    template["functions"][0]["input"] = "HttpRequest"
    (tmp_path / "manifest.json").write_text(json.dumps(template))
    entry = read_package(build_example_package(tmp_path, dist_dir)).manifest.functions[0]
    assert entry.input == "HttpRequest"
    assert entry.output == "ApiResponse"


def test_package_build_cli_several(dist_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["package", "build", str(EXAMPLES_DIR / "invoice"), str(EXAMPLES_DIR / "api"),
         "--wasm-dir", str(dist_dir), "--out-dir", str(tmp_path)],
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    for line, name in zip(lines, ("invoice", "api")):
        cid, path = line.split()[:2]
        assert cid.startswith("bafkrei")
        assert Path(path) == tmp_path / f"{name}.cloudless.tar"
        assert read_package(Path(path).read_bytes()).cid == cid


def test_package_build_cli_out_with_several(dist_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli,
        ["package", "build", str(EXAMPLES_DIR / "api"), str(EXAMPLES_DIR / "text"),
         "--wasm-dir", str(dist_dir), "--out", str(tmp_path / "x.tar")],
    )
    assert result.exit_code != 0
    assert "--out takes a single EXAMPLE_DIR" in result.output


# --- context: the host namespace "cloudless" -----------------------------------


@pytest.fixture(scope="module")
def context_package(runtime: WasmRuntime, dist_dir: Path) -> LoadedPackage:
    return load_example(runtime, dist_dir, "context")


def test_context_call_params(runtime: WasmRuntime, context_package: LoadedPackage) -> None:
    context = CallContext(
        deal_id=17,
        caller="0x" + "ab" * 20,
        function="call_info",
        request_id="0x" + "01" * 32,
    )
    result = runtime.call(context_package, "call_info", b"{}", context=context)
    assert json.loads(result.output) == {
        "deal_id": 17, "caller": context.caller, "function": "call_info", "request_id": context.request_id}
    assert result.logs == (("info", f"deal 17 called call_info (request {context.request_id})"),)


def test_context_without_deal(runtime: WasmRuntime, context_package: LoadedPackage) -> None:
    output = call_json(runtime, context_package, "call_info", None)
    assert output == {"deal_id": 0, "caller": "", "function": "call_info", "request_id": ""}


def test_context_log_levels(runtime: WasmRuntime, context_package: LoadedPackage) -> None:
    result = runtime.call(context_package, "log_levels", b'{"message": "caf\xc3\xa9"}')
    assert json.loads(result.output) == {"records": 5}
    assert result.logs == (
        ("error", "café"), ("warn", "café"), ("info", "café"), ("debug", "café"), ("trace", "café"))
    assert result.dropped_logs == 0


def test_context_log_limit(runtime: WasmRuntime, context_package: LoadedPackage) -> None:
    result = runtime.call(context_package, "log_levels", b'{"message": "m", "repeat": 95}')
    assert json.loads(result.output) == {"records": 100}
    assert len(result.logs) == 64
    assert result.dropped_logs == 36
