"""Strict checks for calls that must revert with a custom error."""

from contextlib import contextmanager

import ape
from ape.exceptions import ContractLogicError, CustomError
from eth_abi import encode
from eth_utils import keccak


@contextmanager
def reverts_with(error_type, **inputs):
    """Expect the block to revert with the custom error `error_type` and exactly `inputs`.

    `ape.reverts` accepts a revert without a custom error in place of the
    expected one, and it ignores argument names that the error does not have.
    This check fails in both cases, because it compares the error's name and
    the full set of its arguments.
    """
    expected_name = error_type.__name__
    try:
        yield
    except CustomError as error:
        assert error.name == expected_name, f"expected {expected_name}{inputs}, got {error!r}"
        assert dict(error.inputs) == inputs, f"wrong arguments of {expected_name}: {error!r}"
    except ContractLogicError as error:
        raise AssertionError(f"expected {expected_name}{inputs}, got a revert without custom error: {error}") from error
    else:
        raise AssertionError(f"expected {expected_name}{inputs}, but the call did not revert")


def assert_call_reverts(contract, method_name, arguments, error_type, **inputs):
    """Check with `eth_call` that a view reverts with `error_type(**inputs)`, byte for byte.

    Ape 0.8.51 does not decode the revert of a view call, so `ape.reverts`
    accepts any revert there. This compares the raw revert data with the
    error's selector and ABI-encoded arguments.
    """
    calldata = bytes(getattr(contract, method_name).encode_input(*arguments))
    _expect_revert_data({"to": contract.address, "data": "0x" + calldata.hex()}, error_type, inputs)


def assert_deploy_reverts(container, arguments, error_type, **inputs):
    """Check with `eth_call` that deploying `container` with `arguments` reverts with `error_type(**inputs)`."""
    constructor = container.contract_type.constructor
    types = [item.canonical_type for item in constructor.inputs]
    bytecode = bytes.fromhex(container.contract_type.deployment_bytecode.bytecode.removeprefix("0x"))
    data = bytecode + encode(types, list(arguments))
    _expect_revert_data({"data": "0x" + data.hex()}, error_type, inputs)


def _expect_revert_data(request, error_type, inputs):
    abi = error_type.abi
    names = [item.name for item in abi.inputs]
    assert sorted(names) == sorted(inputs), f"{abi.name} takes {names}, the test gave {sorted(inputs)}"
    types = [item.canonical_type for item in abi.inputs]
    expected = keccak(text=abi.selector)[:4] + encode(types, [inputs[name] for name in names])

    response = ape.chain.provider.web3.provider.make_request("eth_call", [request, "latest"])

    assert "error" in response, f"expected {abi.name}{inputs}, but the call succeeded"
    data = response["error"].get("data") or ""
    assert data == "0x" + expected.hex(), f"expected {abi.name}{inputs} ({expected.hex()}), got revert data {data}"
