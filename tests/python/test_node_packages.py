"""PackageCache: packages fetched by CID from package sources on 127.0.0.1 must hash to that CID."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import wasmtime

from cloudless.cid import compute_cid
from cloudless.exceptions import PackageUnavailableError
from cloudless.node.packages import PackageCache
from cloudless.runtime import WasmRuntime, build_package

GUEST_WAT = """
(module
  (memory (export "memory") 1)
  (data (i32.const 16) "{\\"ok\\":VALUE}")
  (func (export "cloudless_abi_version") (result i32) (i32.const 1))
  (func (export "cloudless_alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "cloudless_free") (param i32 i32))
  (func (export "value") (param i32 i32) (result i64) (i64.const 0x0000001000000008)))
"""


def make_package(value: int) -> bytes:
    """Return a valid package whose `value` function returns the one-digit `value`."""
    template = {
        "abi": 1,
        "name": f"package-{value}",
        "version": "1.0.0",
        "modules": [{"name": "guest"}],
        "functions": [{"name": "value", "description": "Return a constant."}],
        "limits": {"fuel": 1_000_000, "memory_bytes": 65536, "timeout_ms": 1000},
    }
    return build_package(template, {"guest": wasmtime.wat2wasm(GUEST_WAT.replace("VALUE", str(value)))})


class PackageSource:
    """An HTTP package source on 127.0.0.1 that serves `responses[cid]` at `/packages/<cid>`."""

    def __init__(self) -> None:
        self.responses: dict[str, bytes] = {}
        self.requests: list[str] = []
        source = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the name http.server dispatches to
                source.requests.append(self.path)
                body = source.responses.get(self.path.removeprefix("/packages/"))
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture()
def sources() -> Iterator[tuple[PackageSource, PackageSource]]:
    first, second = PackageSource(), PackageSource()
    yield first, second
    first.close()
    second.close()


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    with WasmRuntime() as shared:
        yield shared


def test_fetched_package_with_wrong_cid_rejected(
    tmp_path: Path, runtime: WasmRuntime, sources: tuple[PackageSource, PackageSource], caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = sources
    expected_package, other = make_package(1), make_package(2)
    cid = compute_cid(expected_package)
    source.responses[cid] = other  # a valid package, but not the one this CID names
    cache = PackageCache(runtime, tmp_path, [source.url])

    with caplog.at_level(logging.WARNING, logger="cloudless.node"):
        loaded = cache.ensure(cid)

    assert loaded is False
    assert not cache.is_loaded(cid)
    assert not (tmp_path / cid).exists()
    assert source.requests == [f"/packages/{cid}"]
    messages = "\n".join(record.getMessage() for record in caplog.records)
    assert f"CID mismatch: expected {cid}" in messages
    assert f"hash to {compute_cid(other)}" in messages
    with pytest.raises(PackageUnavailableError, match=f"package {cid} is not loaded"):
        cache.get(cid)


def test_fetch_error_names_source_and_mismatch(
    tmp_path: Path, runtime: WasmRuntime, sources: tuple[PackageSource, PackageSource]
) -> None:
    source, _ = sources
    expected_package = make_package(1)
    cid = compute_cid(expected_package)
    source.responses[cid] = expected_package[:-1] + bytes([expected_package[-1] ^ 0x01])
    cache = PackageCache(runtime, tmp_path, [source.url])

    with pytest.raises(PackageUnavailableError) as raised:
        cache._fetch(cid)

    message = str(raised.value)
    assert message.startswith(f"no package source served {cid}: {source.url}: CID mismatch")
    assert f"the {len(expected_package)} bytes received hash to" in message


def test_fetch_falls_back_to_honest_source(
    tmp_path: Path, runtime: WasmRuntime, sources: tuple[PackageSource, PackageSource]
) -> None:
    bad, good = sources
    expected_package = make_package(1)
    cid = compute_cid(expected_package)
    bad.responses[cid] = make_package(2)
    good.responses[cid] = expected_package
    cache = PackageCache(runtime, tmp_path, [bad.url, good.url])

    assert cache.ensure(cid) is True

    assert (tmp_path / cid).read_bytes() == expected_package
    result = runtime.call(cache.get(cid), "value", b"{}")
    assert result.output == b"1"
    assert bad.requests == [f"/packages/{cid}"]
    assert good.requests == [f"/packages/{cid}"]


def test_corrupt_cached_package_refetched(
    tmp_path: Path, runtime: WasmRuntime, sources: tuple[PackageSource, PackageSource], caplog: pytest.LogCaptureFixture
) -> None:
    source, _ = sources
    expected_package = make_package(1)
    cid = compute_cid(expected_package)
    source.responses[cid] = expected_package
    (tmp_path / cid).write_bytes(make_package(3))
    cache = PackageCache(runtime, tmp_path, [source.url])

    with caplog.at_level(logging.WARNING, logger="cloudless.node"):
        assert cache.ensure(cid) is True

    assert any("is invalid, fetching it again" in record.getMessage() for record in caplog.records)
    assert (tmp_path / cid).read_bytes() == expected_package
    assert source.requests == [f"/packages/{cid}"]
