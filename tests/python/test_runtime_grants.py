"""Runtime grants, host functions and the typed errors for hostile output.

Covers the manifest's per-module grants and function types, the WASI import
allowlist that load() enforces, the /data directory of the "files" grant,
the host functions cloudless.call_params and cloudless.log, and the error
kinds stack_overflow, output_too_large and invalid_output for invalid UTF-8.
Every guest is hand-written WAT built on the ABI v1 guest of test_runtime.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import wasmtime

from cloudless.exceptions import (
    ConfigError,
    ImportNotAllowedError,
    InvalidInputError,
    InvalidOutputError,
    ManifestError,
    OutputTooLargeError,
    PackageFormatError,
    StackOverflowError,
    WasmCallError,
    WasmTrapError,
)
from cloudless.gateway.dispatch import ERROR_KIND_STATUS
from cloudless.runtime import CallContext, HostLimits, LoadedPackage, WasmRuntime, build_package, read_package
from cloudless.runtime.package_tar import write_canonical_tar
from test_runtime import guest_template, guest_wat

# Scratch addresses below the guest's heap (4096) that test_runtime's guest leaves unused.
SCRATCH = 2048
OK_STRING_PREFIX = 2300  # '{"ok":"'
BAD_UTF8_OUTPUT = 2400  # '{"ok":"\xff"}'
PATH_OPEN_RIGHTS = 0x1FFFFFFF  # every WASI preview 1 right
ERRNO_BADF = 8
ERRNO_NOTCAPABLE = 76

WASI_IMPORTS = {
    "clock_res_get": "(param i32 i32) (result i32)",
    "clock_time_get": "(param i32 i64 i32) (result i32)",
    "poll_oneoff": "(param i32 i32 i32 i32) (result i32)",
    "random_get": "(param i32 i32) (result i32)",
    "sock_accept": "(param i32 i32 i32) (result i32)",
    "sock_recv": "(param i32 i32 i32 i32 i32 i32) (result i32)",
    "sock_send": "(param i32 i32 i32 i32 i32) (result i32)",
    "sock_shutdown": "(param i32 i32) (result i32)",
    "proc_raise": "(param i32) (result i32)",
    "fd_prestat_get": "(param i32 i32) (result i32)",
    "path_open": "(param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)",
    "fd_close": "(param i32) (result i32)",
    "fd_readdir": "(param i32 i32 i32 i64 i32) (result i32)",
}


def wasi_import(name: str) -> str:
    return f'(import "wasi_snapshot_preview1" "{name}" (func ${name} {WASI_IMPORTS[name]}))'


def module_with(imports: list[str] | None = None, functions: str = "") -> bytes:
    return wasmtime.wat2wasm(guest_wat(extra_imports="\n  ".join(imports or []), extra_functions=functions))


def package_with(
    wasm: bytes,
    functions: tuple[str, ...],
    grants: list[str] | None = None,
    wasi: dict[str, Any] | None = None,
) -> bytes:
    return build_package(guest_template(functions=functions, grants=grants, wasi=wasi), {"guest": wasm})


@pytest.fixture(scope="module")
def runtime() -> Iterator[WasmRuntime]:
    with WasmRuntime() as shared_runtime:
        yield shared_runtime


def call_json(
    runtime: WasmRuntime, package: LoadedPackage, function: str, input_bytes: bytes = b"", **kwargs: Any
) -> Any:
    return json.loads(runtime.call(package, function, input_bytes, **kwargs).output)


# --- manifest -----------------------------------------------------------------

PLAIN_WASM = module_with()


def test_manifest_accepts_grants_and_types() -> None:
    template = guest_template(functions=("echo",), grants=["clock", "random", "env", "files"])
    template["functions"][0].update({"input": "SummarizeRequest", "output": "Summary"})

    manifest = read_package(build_package(template, {"guest": PLAIN_WASM})).manifest

    assert manifest.modules[0].grants == ["clock", "random", "env", "files"]
    assert manifest.functions[0].input == "SummarizeRequest"
    assert manifest.functions[0].output == "Summary"


def test_manifest_defaults_grants_and_types() -> None:
    manifest = read_package(package_with(PLAIN_WASM, ("echo",))).manifest

    assert manifest.modules[0].grants == []
    assert manifest.functions[0].input == "json"
    assert manifest.functions[0].output == "json"


@pytest.mark.parametrize(
    ("grants", "message"),
    [(["net"], "unknown grant 'net'"), (["clock", "clock"], "duplicate grant"), (["Clock"], "unknown grant 'Clock'")],
)
def test_manifest_rejects_invalid_grants(grants: list[str], message: str) -> None:
    with pytest.raises(ManifestError) as caught:
        package_with(PLAIN_WASM, ("echo",), grants=grants)

    assert caught.value.field == "modules[0].grants"
    assert message in str(caught.value)


@pytest.mark.parametrize(("key", "value"), [("input", ""), ("output", "x" * 129), ("input", 5)])
def test_manifest_rejects_invalid_type_names(key: str, value: Any) -> None:
    template = guest_template(functions=("echo",))
    template["functions"][0][key] = value

    with pytest.raises(ManifestError) as caught:
        build_package(template, {"guest": PLAIN_WASM})

    assert caught.value.field == f"functions[0].{key}"


def test_manifest_accepts_type_name_of_128_chars() -> None:
    template = guest_template(functions=("echo",))
    template["functions"][0]["output"] = "T" * 128

    manifest = read_package(build_package(template, {"guest": PLAIN_WASM})).manifest

    assert manifest.functions[0].output == "T" * 128


def test_manifest_rejects_module_named_cloudless() -> None:
    template = guest_template(functions=("echo",), modules=("cloudless",))

    with pytest.raises(ManifestError) as caught:
        build_package(template, {"cloudless": PLAIN_WASM})

    assert caught.value.field == "modules[0].name"
    assert "host functions" in str(caught.value)


def old_format_manifest(wasm: bytes) -> bytes:
    """Return manifest.json as the packer wrote it before grants and function types existed."""
    document = {
        "abi": 1,
        "functions": [{"description": "Echo.", "name": "echo"}],
        "limits": {"fuel": 5_000_000, "memory_bytes": 262144, "timeout_ms": 5000},
        "modules": [{"name": "guest", "path": "modules/guest.wasm", "sha256": hashlib.sha256(wasm).hexdigest()}],
        "name": "old-guest",
        "version": "1.0.0",
        "wasi": {"env": {}, "stdout_limit_bytes": 65536},
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode()


def test_old_manifest_loads_and_calls(runtime: WasmRuntime) -> None:
    package_bytes = write_canonical_tar(
        [("manifest.json", old_format_manifest(PLAIN_WASM)), ("modules/guest.wasm", PLAIN_WASM)]
    )

    loaded = runtime.load(package_bytes)

    assert loaded.manifest.modules[0].grants == []
    assert call_json(runtime, loaded, "echo", b"[1,2]") == [1, 2]


def test_old_template_builds_same_bytes() -> None:
    template = {
        "abi": 1,
        "name": "old-guest",
        "version": "1.0.0",
        "modules": [{"name": "guest"}],
        "functions": [{"name": "echo", "description": "Echo."}],
        "limits": {"fuel": 5_000_000, "memory_bytes": 262144, "timeout_ms": 5000},
    }
    expected = write_canonical_tar(
        [("manifest.json", old_format_manifest(PLAIN_WASM)), ("modules/guest.wasm", PLAIN_WASM)]
    )

    assert build_package(template, {"guest": PLAIN_WASM}) == expected


# --- WASI import allowlist ----------------------------------------------------------


@pytest.mark.parametrize(
    ("function", "grant"),
    [("clock_time_get", "clock"), ("clock_res_get", "clock"), ("poll_oneoff", "clock"), ("random_get", "random")],
)
def test_load_rejects_import_without_grant(runtime: WasmRuntime, function: str, grant: str) -> None:
    wasm = module_with([wasi_import(function)])
    other_grants = [name for name in ("clock", "env", "files", "random") if name != grant]

    with pytest.raises(ImportNotAllowedError) as caught:
        runtime.load(package_with(wasm, ("echo",), grants=other_grants))

    error = caught.value
    assert error.module == "guest"
    assert error.import_name == f"wasi_snapshot_preview1.{function}"
    assert error.grant == grant
    assert "'guest'" in str(error)
    assert f"wasi_snapshot_preview1.{function}" in str(error)
    assert f"'{grant}' grant" in str(error)


@pytest.mark.parametrize(
    ("function", "grant"),
    [("clock_time_get", "clock"), ("clock_res_get", "clock"), ("poll_oneoff", "clock"), ("random_get", "random")],
)
def test_load_accepts_import_with_grant(runtime: WasmRuntime, function: str, grant: str) -> None:
    wasm = module_with([wasi_import(function)])

    loaded = runtime.load(package_with(wasm, ("echo",), grants=[grant]))

    assert call_json(runtime, loaded, "echo", b"1") == 1


@pytest.mark.parametrize("function", ["sock_accept", "sock_recv", "sock_send", "sock_shutdown", "proc_raise"])
def test_load_rejects_import_no_grant_allows(runtime: WasmRuntime, function: str) -> None:
    wasm = module_with([wasi_import(function)])

    with pytest.raises(ImportNotAllowedError) as caught:
        runtime.load(package_with(wasm, ("echo",), grants=["clock", "env", "files", "random"]))

    assert caught.value.grant is None
    assert caught.value.import_name == f"wasi_snapshot_preview1.{function}"
    assert "no grant allows" in str(caught.value)


def test_load_rejects_unknown_wasi_function(runtime: WasmRuntime) -> None:
    wasm = module_with(['(import "wasi_snapshot_preview1" "fd_teleport" (func (param i32) (result i32)))'])

    with pytest.raises(ImportNotAllowedError, match="fd_teleport"):
        runtime.load(package_with(wasm, ("echo",)))


def test_load_rejects_wasi_import_with_wrong_type(runtime: WasmRuntime) -> None:
    wasm = module_with(['(import "wasi_snapshot_preview1" "fd_close" (func (param i64) (result i32)))'])

    with pytest.raises(PackageFormatError, match=r"fd_close with type \(i64\) -> \(i32\)"):
        runtime.load(package_with(wasm, ("echo",)))


@pytest.mark.parametrize(
    ("import_text", "message"),
    [
        ('(import "cloudless" "read_secret" (func (result i32)))', "only defines call_params, log"),
        ('(import "cloudless" "log" (func (param i32 i32)))', r"cloudless.log with type \(i32, i32\) -> \(\)"),
        ('(import "cloudless" "call_params" (func (param i32 i32)))', r"defines \(i32, i32\) -> \(i32\)"),
    ],
)
def test_load_rejects_bad_host_import(runtime: WasmRuntime, import_text: str, message: str) -> None:
    wasm = module_with([import_text])

    with pytest.raises(PackageFormatError, match=message):
        runtime.load(package_with(wasm, ("echo",)))


CLOCK_HELPER_WAT = """
(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (memory (export "memory") 1)
  ;; Returns 1 when the realtime clock returned success and a non-zero time.
  (func (export "clock_ok") (result i32)
    (i32.and
      (i32.eqz (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 0)))
      (i64.ne (i64.load (i32.const 0)) (i64.const 0)))))
"""

CLOCK_FACADE_FUNCTIONS = """
  (func (export "helper_clock_ok") (param i32 i32) (result i64)
    (call $ok_i32 (call $helper_clock_ok)))
"""


def two_module_package(
    helper_wat: str,
    facade_imports: list[str],
    facade_functions: str,
    function: str,
    grants: dict[str, list[str]],
    wasi: dict[str, Any] | None = None,
) -> bytes:
    """Build a package of a WAT helper module and an ABI v1 facade; `grants` maps module name to its grants."""
    helper = wasmtime.wat2wasm(helper_wat)
    facade = module_with(facade_imports, facade_functions)
    template = guest_template(functions=(function,), modules=("helper", "facade"), wasi=wasi)
    for entry in template["modules"]:
        entry["grants"] = grants.get(entry["name"], [])
    return build_package(template, {"helper": helper, "facade": facade})


def test_load_checks_grants_per_module(runtime: WasmRuntime) -> None:
    imports = ['(import "helper" "clock_ok" (func $helper_clock_ok (result i32)))']
    granted = two_module_package(
        CLOCK_HELPER_WAT, imports, CLOCK_FACADE_FUNCTIONS, "helper_clock_ok", {"helper": ["clock"]}
    )
    only_facade = two_module_package(
        CLOCK_HELPER_WAT, imports, CLOCK_FACADE_FUNCTIONS, "helper_clock_ok", {"facade": ["clock"]}
    )

    loaded = runtime.load(granted)
    with pytest.raises(ImportNotAllowedError) as caught:
        runtime.load(only_facade)

    assert call_json(runtime, loaded, "helper_clock_ok") == 1
    assert caught.value.module == "helper"
    assert caught.value.grant == "clock"


def test_call_clock_works_with_grant(runtime: WasmRuntime) -> None:
    functions = """
  (func (export "clock_ok") (param i32 i32) (result i64)
    (call $ok_i32
      (i32.and
        (i32.eqz (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 2048)))
        (i64.ne (i64.load (i32.const 2048)) (i64.const 0)))))
"""
    wasm = module_with([wasi_import("clock_time_get")], functions)

    loaded = runtime.load(package_with(wasm, ("clock_ok",), grants=["clock"]))

    assert call_json(runtime, loaded, "clock_ok") == 1


# --- env grant per module -----------------------------------------------------------

ENV_HELPER_WAT = """
(module
  (import "wasi_snapshot_preview1" "environ_sizes_get" (func $environ_sizes_get (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "env_count") (result i32)
    (drop (call $environ_sizes_get (i32.const 0) (i32.const 4)))
    (i32.load (i32.const 0))))
"""

ENV_FACADE_IMPORTS = ['(import "helper" "env_count" (func $helper_env_count (result i32)))']
# Returns 10 * (variables the helper sees) + (variables the facade sees).
ENV_FACADE_FUNCTIONS = """
  (func (export "env_counts") (param i32 i32) (result i64)
    (drop (call $environ_sizes_get (i32.const 2048) (i32.const 2052)))
    (call $ok_i32 (i32.add (i32.mul (call $helper_env_count) (i32.const 10)) (i32.load (i32.const 2048)))))
"""
TWO_VARIABLES = {"env": {"GREETING": "hi", "LANG": "C"}}


@pytest.mark.parametrize(
    ("grants", "expected"),
    [
        ({"helper": ["env"]}, 20),
        ({"facade": ["env"]}, 2),
        ({"helper": ["env"], "facade": ["env"]}, 22),
        ({}, 0),
    ],
)
def test_call_env_visible_only_with_grant(runtime: WasmRuntime, grants: dict[str, list[str]], expected: int) -> None:
    package = two_module_package(
        ENV_HELPER_WAT, ENV_FACADE_IMPORTS, ENV_FACADE_FUNCTIONS, "env_counts", grants, TWO_VARIABLES
    )

    loaded = runtime.load(package)

    assert call_json(runtime, loaded, "env_counts") == expected


# --- files grant ----------------------------------------------------------------------

# fd 3 is the first preopened directory, if there is one.
FILES_IMPORTS = [wasi_import("fd_prestat_get"), wasi_import("path_open"), wasi_import("fd_close")]
FILES_FUNCTIONS = f"""
  (data (i32.const {OK_STRING_PREFIX}) "{{\\"ok\\":\\"")

  ;; Returns 1000 * errno of fd_prestat_get(3) + the length of its name.
  (func (export "prestat") (param i32 i32) (result i64)
    (local $errno i32)
    (local.set $errno (call $fd_prestat_get (i32.const 3) (i32.const {SCRATCH})))
    (call $ok_i32
      (i32.add (i32.mul (local.get $errno) (i32.const 1000))
               (select (i32.load (i32.const {SCRATCH + 4})) (i32.const 0) (i32.eqz (local.get $errno))))))

  ;; Opens the input as a path under fd 3 and returns the errno of path_open.
  (func (export "open_errno") (param $ptr i32) (param $len i32) (result i64)
    (call $ok_i32 (call $path_open (i32.const 3) (i32.const 0) (local.get $ptr) (local.get $len) (i32.const 0)
                                   (i64.const {PATH_OPEN_RIGHTS}) (i64.const {PATH_OPEN_RIGHTS}) (i32.const 0)
                                   (i32.const {SCRATCH}))))

  ;; Returns {{"ok":"<first 200 bytes of the file>"}} for the path in the input, or {{"ok":-errno}}.
  (func (export "read_file") (param $ptr i32) (param $len i32) (result i64)
    (local $errno i32)
    (local $buffer i32)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (local.get $ptr) (local.get $len) (i32.const 0)
                                       (i64.const {PATH_OPEN_RIGHTS}) (i64.const {PATH_OPEN_RIGHTS}) (i32.const 0)
                                       (i32.const {SCRATCH})))
    (if (local.get $errno) (then (return (call $ok_i32 (i32.sub (i32.const 0) (local.get $errno))))))
    (local.set $buffer (call $alloc (i32.const 210)))
    (memory.copy (local.get $buffer) (i32.const {OK_STRING_PREFIX}) (i32.const 7))
    (i32.store (i32.const {SCRATCH + 16}) (i32.add (local.get $buffer) (i32.const 7)))
    (i32.store (i32.const {SCRATCH + 20}) (i32.const 200))
    (drop (call $fd_read (i32.load (i32.const {SCRATCH})) (i32.const {SCRATCH + 16}) (i32.const 1) (i32.const {SCRATCH + 24})))
    (drop (call $fd_close (i32.load (i32.const {SCRATCH}))))
    (i32.store8 (i32.add (i32.add (local.get $buffer) (i32.const 7)) (i32.load (i32.const {SCRATCH + 24}))) (i32.const 34))
    (i32.store8 (i32.add (i32.add (local.get $buffer) (i32.const 8)) (i32.load (i32.const {SCRATCH + 24}))) (i32.const 125))
    (call $pack (local.get $buffer) (i32.add (i32.load (i32.const {SCRATCH + 24})) (i32.const 9))))

  ;; Creates or truncates the file named by the input and writes the stdout line to it; returns the errno.
  (func (export "write_file") (param $ptr i32) (param $len i32) (result i64)
    (local $errno i32)
    (local.set $errno (call $path_open (i32.const 3) (i32.const 0) (local.get $ptr) (local.get $len) (i32.const 9)
                                       (i64.const {PATH_OPEN_RIGHTS}) (i64.const {PATH_OPEN_RIGHTS}) (i32.const 0)
                                       (i32.const {SCRATCH})))
    (if (local.get $errno) (then (return (call $ok_i32 (local.get $errno)))))
    (i32.store (i32.const {SCRATCH + 16}) (i32.const 160))
    (i32.store (i32.const {SCRATCH + 20}) (i32.const 18))
    (local.set $errno (call $fd_write (i32.load (i32.const {SCRATCH})) (i32.const {SCRATCH + 16}) (i32.const 1) (i32.const {SCRATCH + 24})))
    (drop (call $fd_close (i32.load (i32.const {SCRATCH}))))
    (call $ok_i32 (local.get $errno)))
"""
FILES_FUNCTION_NAMES = ("prestat", "open_errno", "read_file", "write_file")


@pytest.fixture(scope="module")
def files_guest(runtime: WasmRuntime) -> LoadedPackage:
    wasm = module_with(FILES_IMPORTS, FILES_FUNCTIONS)
    return runtime.load(package_with(wasm, FILES_FUNCTION_NAMES, grants=["files"]))


@pytest.fixture(scope="module")
def no_files_guest(runtime: WasmRuntime) -> LoadedPackage:
    return runtime.load(package_with(module_with(FILES_IMPORTS, FILES_FUNCTIONS), FILES_FUNCTION_NAMES))


def test_files_preopens_data_dir(runtime: WasmRuntime, files_guest: LoadedPackage, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi from the host")

    assert call_json(runtime, files_guest, "prestat", data_dir=tmp_path) == len("/data")
    assert call_json(runtime, files_guest, "read_file", b"hello.txt", data_dir=tmp_path) == "hi from the host"


def test_files_guest_writes_into_data_dir(runtime: WasmRuntime, files_guest: LoadedPackage, tmp_path: Path) -> None:
    assert call_json(runtime, files_guest, "write_file", b"out.txt", data_dir=tmp_path) == 0

    assert (tmp_path / "out.txt").read_text() == "hello from stdout\n"


def test_files_data_dir_is_per_call(runtime: WasmRuntime, files_guest: LoadedPackage, tmp_path: Path) -> None:
    first, second = tmp_path / "deal-1", tmp_path / "deal-2"
    first.mkdir()
    second.mkdir()
    (first / "name.txt").write_text("one")
    (second / "name.txt").write_text("two")

    assert call_json(runtime, files_guest, "read_file", b"name.txt", data_dir=first) == "one"
    assert call_json(runtime, files_guest, "read_file", b"name.txt", data_dir=second) == "two"


def test_files_cannot_escape_data_dir(runtime: WasmRuntime, files_guest: LoadedPackage, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "secret.txt").write_text("host secret")

    assert call_json(runtime, files_guest, "open_errno", b"../secret.txt", data_dir=data_dir) != 0
    assert call_json(runtime, files_guest, "open_errno", b"/secret.txt", data_dir=data_dir) != 0


def test_files_grant_without_data_dir_preopens_nothing(runtime: WasmRuntime, files_guest: LoadedPackage) -> None:
    assert call_json(runtime, files_guest, "prestat") == ERRNO_BADF * 1000


def test_files_not_preopened_without_grant(runtime: WasmRuntime, no_files_guest: LoadedPackage, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi from the host")

    assert call_json(runtime, no_files_guest, "prestat", data_dir=tmp_path) == ERRNO_BADF * 1000
    assert call_json(runtime, no_files_guest, "read_file", b"hello.txt", data_dir=tmp_path) == -ERRNO_BADF


def test_files_rejects_missing_data_dir(runtime: WasmRuntime, files_guest: LoadedPackage, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a directory"):
        runtime.call(files_guest, "prestat", b"", data_dir=tmp_path / "missing")


FILES_HELPER_WAT = f"""
(module
  {wasi_import("fd_prestat_get")}
  (memory (export "memory") 1)
  (func (export "prestat_errno") (result i32)
    (call $fd_prestat_get (i32.const 3) (i32.const 0))))
"""
FILES_FACADE_IMPORTS = [
    wasi_import("fd_prestat_get"),
    wasi_import("path_open"),
    wasi_import("fd_readdir"),
    '(import "helper" "prestat_errno" (func $helper_prestat_errno (result i32)))',
]
# Returns 100 * errno of the helper's fd_prestat_get(3) + errno of the facade's own.
FILES_FACADE_FUNCTIONS = """
  (func (export "prestat_errnos") (param i32 i32) (result i64)
    (call $ok_i32 (i32.add (i32.mul (call $helper_prestat_errno) (i32.const 100))
                           (call $fd_prestat_get (i32.const 3) (i32.const 2048)))))
  (func (export "facade_readdir_errno") (param i32 i32) (result i64)
    (call $ok_i32 (call $fd_readdir (i32.const 3) (i32.const 2048) (i32.const 256) (i64.const 0) (i32.const 2040))))
  (func (export "facade_open_errno") (param $ptr i32) (param $len i32) (result i64)
    (call $ok_i32 (call $path_open (i32.const 3) (i32.const 0) (local.get $ptr) (local.get $len) (i32.const 0)
                                   (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 2048))))
"""


@pytest.mark.parametrize(
    ("grants", "expected"),
    [({"helper": ["files"]}, ERRNO_BADF), ({"facade": ["files"]}, ERRNO_BADF * 100), ({}, ERRNO_BADF * 101)],
)
def test_files_grant_applies_per_module(
    runtime: WasmRuntime, tmp_path: Path, grants: dict[str, list[str]], expected: int
) -> None:
    imports = FILES_FACADE_IMPORTS
    helper = wasmtime.wat2wasm(FILES_HELPER_WAT)
    facade = module_with(imports, FILES_FACADE_FUNCTIONS)
    template = guest_template(
        functions=("prestat_errnos", "facade_open_errno", "facade_readdir_errno"), modules=("helper", "facade")
    )
    for entry in template["modules"]:
        entry["grants"] = grants.get(entry["name"], [])

    loaded = runtime.load(build_package(template, {"helper": helper, "facade": facade}))

    assert call_json(runtime, loaded, "prestat_errnos", data_dir=tmp_path) == expected


def test_files_path_open_stubbed_without_grant(runtime: WasmRuntime, tmp_path: Path) -> None:
    (tmp_path / "hello.txt").write_text("hi")
    imports = FILES_FACADE_IMPORTS
    helper = wasmtime.wat2wasm(FILES_HELPER_WAT)
    facade = module_with(imports, FILES_FACADE_FUNCTIONS)
    template = guest_template(functions=("facade_open_errno", "facade_readdir_errno"), modules=("helper", "facade"))
    template["modules"][0]["grants"] = ["files"]

    loaded = runtime.load(build_package(template, {"helper": helper, "facade": facade}))

    # The store preopens /data for the helper, but the facade's path_open and fd_readdir are stubs.
    assert call_json(runtime, loaded, "facade_open_errno", b"hello.txt", data_dir=tmp_path) == ERRNO_NOTCAPABLE
    assert call_json(runtime, loaded, "facade_readdir_errno", data_dir=tmp_path) == ERRNO_BADF


# --- cloudless.call_params ----------------------------------------------------------

CALL_PARAMS_IMPORT = '(import "cloudless" "call_params" (func $call_params (param i32 i32) (result i32)))'
CALL_PARAMS_FUNCTIONS = """
  ;; Returns {"ok":<call parameters>}: asks for the size, allocates, asks again.
  (func (export "params") (param i32 i32) (result i64)
    (local $size i32)
    (local $buffer i32)
    (local.set $size (call $call_params (i32.const 0) (i32.const 0)))
    (local.set $buffer (call $alloc (i32.add (local.get $size) (i32.const 7))))
    (memory.copy (local.get $buffer) (i32.const 0) (i32.const 6))
    (drop (call $call_params (i32.add (local.get $buffer) (i32.const 6)) (local.get $size)))
    (i32.store8 (i32.add (i32.add (local.get $buffer) (i32.const 6)) (local.get $size)) (i32.const 125))
    (call $pack (local.get $buffer) (i32.add (local.get $size) (i32.const 7))))

  ;; Calls call_params at address 0 with a length one short of the size, so
  ;; a host that wrote anyway would overwrite the {"ok": prefix that ok_i32 copies.
  (func (export "params_short") (param i32 i32) (result i64)
    (local $size i32)
    (local.set $size (call $call_params (i32.const 0) (i32.const 0)))
    (call $ok_i32 (call $call_params (i32.const 0) (i32.sub (local.get $size) (i32.const 1)))))

  (func (export "params_out_of_bounds") (param i32 i32) (result i64)
    (call $ok_i32 (call $call_params (i32.const 65500) (i32.const 1000))))
"""


@pytest.fixture(scope="module")
def params_guest(runtime: WasmRuntime) -> LoadedPackage:
    wasm = module_with([CALL_PARAMS_IMPORT], CALL_PARAMS_FUNCTIONS)
    return runtime.load(package_with(wasm, ("params", "params_short", "params_out_of_bounds")))


def test_call_params_without_context(runtime: WasmRuntime, params_guest: LoadedPackage) -> None:
    assert call_json(runtime, params_guest, "params") == {
        "deal_id": 0,
        "caller": "",
        "function": "params",
        "request_id": "",
    }


def test_call_params_with_context(runtime: WasmRuntime, params_guest: LoadedPackage) -> None:
    context = CallContext(deal_id=42, caller="0x" + "ab" * 20, function="params", request_id="0x" + "cd" * 32)

    params = call_json(runtime, params_guest, "params", context=context)

    assert params == {"deal_id": 42, "caller": "0x" + "ab" * 20, "function": "params", "request_id": "0x" + "cd" * 32}


def test_call_params_short_buffer_writes_nothing(runtime: WasmRuntime, params_guest: LoadedPackage) -> None:
    expected_size = len(b'{"deal_id":0,"caller":"","function":"params_short","request_id":""}')

    assert call_json(runtime, params_guest, "params_short") == expected_size


def test_call_params_out_of_bounds_traps(runtime: WasmRuntime, params_guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError, match="cloudless.call_params was given"):
        runtime.call(params_guest, "params_out_of_bounds", b"")


def test_call_rejects_context_for_other_function(runtime: WasmRuntime, params_guest: LoadedPackage) -> None:
    context = CallContext(deal_id=1, caller="0x00", function="other", request_id="0x01")

    with pytest.raises(InvalidInputError, match="'other'"):
        runtime.call(params_guest, "params", b"", context=context)


@pytest.mark.parametrize(
    ("field", "value"), [("deal_id", -1), ("deal_id", True), ("deal_id", "1"), ("caller", None), ("request_id", 5)]
)
def test_call_context_rejects_invalid_fields(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"deal_id": 1, "caller": "0x00", "function": "params", "request_id": "0x01"}
    fields[field] = value

    with pytest.raises(ValueError, match=f"CallContext.{field}"):
        CallContext(**fields)


# --- cloudless.log ----------------------------------------------------------------------

LOG_IMPORT = '(import "cloudless" "log" (func $log (param i32 i32 i32)))'
LOG_FUNCTIONS = """
  ;; Logs the input once at each level from 0 (error) to 4 (trace).
  (func (export "log_levels") (param $ptr i32) (param $len i32) (result i64)
    (local $level i32)
    (loop $next
      (call $log (local.get $level) (local.get $ptr) (local.get $len))
      (local.set $level (i32.add (local.get $level) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $level) (i32.const 5))))
    (call $ok_i32 (i32.const 0)))

  ;; Logs the input 70 times at level 2 (info).
  (func (export "log_70_times") (param $ptr i32) (param $len i32) (result i64)
    (local $count i32)
    (loop $next
      (call $log (i32.const 2) (local.get $ptr) (local.get $len))
      (local.set $count (i32.add (local.get $count) (i32.const 1)))
      (br_if $next (i32.lt_u (local.get $count) (i32.const 70))))
    (call $ok_i32 (i32.const 0)))

  (func (export "log_bad_level") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 5) (local.get $ptr) (local.get $len))
    (call $ok_i32 (i32.const 0)))

  (func (export "log_out_of_bounds") (param i32 i32) (result i64)
    (call $log (i32.const 2) (i32.const 65500) (i32.const 1000))
    (call $ok_i32 (i32.const 0)))

  ;; Logs, then traps: the records of a failed call are not returned.
  (func (export "log_then_trap") (param $ptr i32) (param $len i32) (result i64)
    (call $log (i32.const 0) (local.get $ptr) (local.get $len))
    (unreachable))
"""
LOG_FUNCTION_NAMES = ("log_levels", "log_70_times", "log_bad_level", "log_out_of_bounds", "log_then_trap", "echo")


@pytest.fixture(scope="module")
def log_guest(runtime: WasmRuntime) -> LoadedPackage:
    return runtime.load(package_with(module_with([LOG_IMPORT], LOG_FUNCTIONS), LOG_FUNCTION_NAMES))


def test_log_records_levels_and_messages(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    result = runtime.call(log_guest, "log_levels", "héllo".encode())

    assert result.logs == (
        ("error", "héllo"),
        ("warn", "héllo"),
        ("info", "héllo"),
        ("debug", "héllo"),
        ("trace", "héllo"),
    )
    assert result.dropped_logs == 0


def test_log_replaces_invalid_utf8(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    result = runtime.call(log_guest, "log_levels", b"bad \xff byte")

    assert result.logs[0] == ("error", "bad \ufffd byte")


def test_log_keeps_64_records(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    result = runtime.call(log_guest, "log_70_times", b"0123456789")

    assert len(result.logs) == 64
    assert result.dropped_logs == 6


def test_log_keeps_16_kib(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    result = runtime.call(log_guest, "log_70_times", b"x" * 5000)

    # Three 5000-byte records fit in 16384 bytes, a fourth does not.
    assert len(result.logs) == 3
    assert result.dropped_logs == 67
    assert sum(len(message) for _, message in result.logs) <= 16 * 1024


def test_log_records_reset_between_calls(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    runtime.call(log_guest, "log_70_times", b"first")

    result = runtime.call(log_guest, "echo", b"1")

    assert result.logs == ()
    assert result.dropped_logs == 0


def test_log_invalid_level_traps(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError, match="level 5"):
        runtime.call(log_guest, "log_bad_level", b"x")


def test_log_out_of_bounds_traps(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    with pytest.raises(WasmTrapError, match="cloudless.log was given 1000 bytes at address 65500"):
        runtime.call(log_guest, "log_out_of_bounds", b"")


def test_log_concurrent_calls_keep_own_records(runtime: WasmRuntime, log_guest: LoadedPackage) -> None:
    results: dict[int, Any] = {}

    def run(index: int) -> None:
        for _ in range(20):
            result = runtime.call(log_guest, "log_levels", f"thread {index}".encode())
            assert {message for _, message in result.logs} == {f"thread {index}"}
        results[index] = True

    threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results) == [0, 1, 2, 3]


# --- typed errors for hostile guests ------------------------------------------------------

HOSTILE_FUNCTIONS = f"""
  (data (i32.const {BAD_UTF8_OUTPUT}) "{{\\"ok\\":\\"\\ff\\"}}")

  (func $recurse (param $depth i32) (result i32)
    (i32.add (call $recurse (i32.add (local.get $depth) (i32.const 1))) (i32.const 1)))

  (func (export "recurse") (param i32 i32) (result i64)
    (call $ok_i32 (call $recurse (i32.const 0))))

  (func (export "bad_utf8") (param i32 i32) (result i64)
    (call $pack (i32.const {BAD_UTF8_OUTPUT}) (i32.const 10)))
"""


@pytest.fixture(scope="module")
def hostile_guest(runtime: WasmRuntime) -> LoadedPackage:
    return runtime.load(package_with(module_with([], HOSTILE_FUNCTIONS), ("recurse", "bad_utf8", "echo")))


def test_call_deep_recursion_raises_stack_overflow(runtime: WasmRuntime, hostile_guest: LoadedPackage) -> None:
    with pytest.raises(StackOverflowError) as caught:
        runtime.call(hostile_guest, "recurse", b"")

    assert caught.value.kind == "stack_overflow"
    assert isinstance(caught.value, WasmTrapError)
    assert "recursion" in str(caught.value)
    assert caught.value.fuel_used > 0


def test_call_invalid_utf8_output_raises_invalid_output(runtime: WasmRuntime, hostile_guest: LoadedPackage) -> None:
    with pytest.raises(InvalidOutputError) as caught:
        runtime.call(hostile_guest, "bad_utf8", b"")

    assert caught.value.kind == "invalid_output"
    assert "not valid UTF-8" in str(caught.value)
    assert "0xff at offset 7" in str(caught.value)


def test_call_output_above_limit_raises_output_too_large() -> None:
    wasm = module_with([], HOSTILE_FUNCTIONS)
    with WasmRuntime(host_limits=HostLimits(max_output_bytes=64)) as small_runtime:
        loaded = small_runtime.load(package_with(wasm, ("recurse", "bad_utf8", "echo")))

        # echo returns the input plus 7 bytes of envelope.
        assert small_runtime.call(loaded, "echo", b"1" * 57).output == b"1" * 57
        with pytest.raises(OutputTooLargeError) as caught:
            small_runtime.call(loaded, "echo", b"1" * 58)

    assert caught.value.kind == "output_too_large"
    assert isinstance(caught.value, InvalidOutputError)
    assert caught.value.output_bytes == 65
    assert caught.value.max_output_bytes == 64
    assert "65 bytes" in str(caught.value)


def test_call_trap_at_initial_memory_limit(runtime: WasmRuntime) -> None:
    # The guest's memory starts at one page, which is also the limit, and never grows.
    loaded = runtime.load(
        build_package(guest_template(functions=("trap",), limits={"memory_bytes": 65536}), {"guest": PLAIN_WASM})
    )

    with pytest.raises(WasmTrapError) as caught:
        runtime.call(loaded, "trap", b"")

    assert caught.value.kind == "trap"
    assert "unreachable" in str(caught.value)


def all_subclasses(cls: type) -> list[type]:
    found = []
    for subclass in cls.__subclasses__():
        found.append(subclass)
        found.extend(all_subclasses(subclass))
    return found


def test_gateway_maps_every_call_error_kind() -> None:
    kinds = {error_class.kind for error_class in all_subclasses(WasmCallError)}

    assert {"stack_overflow", "output_too_large"} <= kinds
    for kind in kinds:
        assert kind in ERROR_KIND_STATUS, kind
    assert ERROR_KIND_STATUS["stack_overflow"] == 422
    assert ERROR_KIND_STATUS["output_too_large"] == 422


# --- output capture ----------------------------------------------------------------------


def test_capture_truncated_between_calls(runtime: WasmRuntime) -> None:
    loaded = runtime.load(package_with(PLAIN_WASM, ("print",)))
    line = b"hello from stdout\n"

    first = runtime.call(loaded, "print", b"xxx")
    second = runtime.call(loaded, "print", b"x")

    assert first.stdout == line * 3
    assert second.stdout == line
    assert second.stderr == line


def test_capture_separate_per_thread(runtime: WasmRuntime) -> None:
    loaded = runtime.load(package_with(PLAIN_WASM, ("print",)))
    line = b"hello from stdout\n"
    mismatches: list[tuple[int, bytes]] = []

    def run(count: int) -> None:
        for _ in range(30):
            result = runtime.call(loaded, "print", b"x" * count)
            if result.stdout != line * count:
                mismatches.append((count, result.stdout))

    threads = [threading.Thread(target=run, args=(count,)) for count in (1, 2, 3, 4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert mismatches == []
