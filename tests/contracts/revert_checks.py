"""Strict checks for calls that must revert with a custom error."""

from contextlib import contextmanager

from ape.exceptions import ContractLogicError, CustomError


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
