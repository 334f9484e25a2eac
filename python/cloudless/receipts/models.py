"""Wire models of signed call requests and receipts, as JSON between gateway and node.

Field names are snake_case. Integers are JSON integers, including uint256
values above 2**53, so JavaScript clients must parse them as BigInt. Byte
strings (hashes, the binary app CID and signatures) are 0x-prefixed hex,
written in lower case and read in either case. `signer` is an EIP-55 checksum
address.

Parsing checks the form of every field. It does not check the signature,
because that needs the EIP-712 domain. Call `verify` for that.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationError,
    model_validator,
)

from cloudless.exceptions import ReceiptError
from cloudless.receipts.eip712 import (
    SIGNATURE_LENGTH,
    CallRequest,
    Domain,
    PrivateKeyLike,
    Receipt,
    normalize_address,
    receipt_digest,
    request_digest,
    sign_receipt,
    sign_request,
    verify_receipt,
    verify_request,
)
from cloudless.receipts.fast import address_of_key

__all__ = [
    "SignedCallRequest",
    "SignedReceipt",
]

_UINT64_MAX = 2**64 - 1
_UINT256_MAX = 2**256 - 1


def _hex_parser(length: int | None) -> Callable[[object], bytes]:
    """Build a validator that turns 0x-prefixed hex into bytes, of `length` bytes if given."""

    def parse(value: object) -> bytes:
        if isinstance(value, bytes):
            data = value
        elif isinstance(value, str):
            if not value.startswith(("0x", "0X")):
                raise ValueError(f"expected 0x-prefixed hex, got {value!r}")
            try:
                data = bytes.fromhex(value[2:])
            except ValueError:
                raise ValueError(
                    f"expected an even number of hex digits after 0x, got {value!r}"
                ) from None
        else:
            raise ValueError(f"expected a 0x-prefixed hex string, got {type(value).__name__}")
        if length is not None and len(data) != length:
            raise ValueError(f"expected {length} bytes, got {len(data)} bytes in {value!r}")
        return data

    return parse


def _to_hex(value: bytes) -> str:
    return "0x" + value.hex()


_HexSerializer = PlainSerializer(_to_hex, return_type=str, when_used="json")

Bytes32Hex = Annotated[bytes, BeforeValidator(_hex_parser(32)), _HexSerializer]
SignatureHex = Annotated[bytes, BeforeValidator(_hex_parser(SIGNATURE_LENGTH)), _HexSerializer]
BytesHex = Annotated[bytes, BeforeValidator(_hex_parser(None)), _HexSerializer]
Uint64 = Annotated[int, Field(ge=0, le=_UINT64_MAX)]
Uint256 = Annotated[int, Field(ge=0, le=_UINT256_MAX)]
Address = Annotated[str, AfterValidator(normalize_address)]


class _WireModel(BaseModel):
    # strict: a JSON "5" or 5.0 is not the integer 5, and true is not 1.
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-ready form: ints as ints, bytes as 0x-hex."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """Serialize to compact JSON text on one line."""
        return self.model_dump_json()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Parse the JSON-ready form. Raises ReceiptError naming every invalid field."""
        try:
            return cls.model_validate(dict(data))
        except ValidationError as error:
            raise ReceiptError(f"invalid {cls.__name__}: {error}") from error

    @classmethod
    def from_json(cls, text: str | bytes) -> Self:
        """Parse JSON text. Raises ReceiptError naming every invalid field."""
        try:
            return cls.model_validate_json(text)
        except ValidationError as error:
            raise ReceiptError(f"invalid {cls.__name__} JSON: {error}") from error


class SignedCallRequest(_WireModel):
    """A `CallRequest` with the caller's signature and address."""

    deal_id: Uint256
    function_name: str
    input_hash: Bytes32Hex
    nonce: Uint256
    deadline: Uint256
    signature: SignatureHex
    signer: Address

    @model_validator(mode="after")
    def _check_request(self) -> Self:
        self.to_request()
        return self

    @classmethod
    def from_request(cls, request: CallRequest, signature: bytes, signer: str) -> Self:
        """Wrap a request with its signature and signer. The signature is not checked."""
        return cls(
            deal_id=request.deal_id,
            function_name=request.function_name,
            input_hash=request.input_hash,
            nonce=request.nonce,
            deadline=request.deadline,
            signature=signature,
            signer=signer,
        )

    @classmethod
    def sign(cls, request: CallRequest, private_key: PrivateKeyLike, domain: Domain) -> Self:
        """Sign `request` with `private_key` and wrap it with the key's address."""
        signature = sign_request(request, private_key, domain)
        return cls.from_request(request, signature, address_of_key(private_key))

    def to_request(self) -> CallRequest:
        """Return the signed fields as a `CallRequest`."""
        return CallRequest(
            deal_id=self.deal_id,
            function_name=self.function_name,
            input_hash=self.input_hash,
            nonce=self.nonce,
            deadline=self.deadline,
        )

    def digest(self, domain: Domain) -> bytes:
        """Compute the request's EIP-712 digest, the `request_hash` of its receipt."""
        return request_digest(self.to_request(), domain)

    def verify(self, domain: Domain, *, now: int) -> None:
        """Check the deadline and that `signer` made `signature`.

        Raises RequestExpiredError or InvalidSignatureError.
        """
        verify_request(
            self.to_request(), self.signature, domain, expected_signer=self.signer, now=now
        )


class SignedReceipt(_WireModel):
    """A `Receipt` with the peer signer's signature and address."""

    worker_id: Uint256
    request_hash: Bytes32Hex
    app_cid: BytesHex
    output_hash: Bytes32Hex
    fuel_used: Uint64
    epoch: Uint64
    sequence: Uint64
    signature: SignatureHex
    signer: Address

    @model_validator(mode="after")
    def _check_receipt(self) -> Self:
        self.to_receipt()
        return self

    @classmethod
    def from_receipt(cls, receipt: Receipt, signature: bytes, signer: str) -> Self:
        """Wrap a receipt with its signature and signer. The signature is not checked."""
        return cls(
            worker_id=receipt.worker_id,
            request_hash=receipt.request_hash,
            app_cid=receipt.app_cid,
            output_hash=receipt.output_hash,
            fuel_used=receipt.fuel_used,
            epoch=receipt.epoch,
            sequence=receipt.sequence,
            signature=signature,
            signer=signer,
        )

    @classmethod
    def sign(cls, receipt: Receipt, private_key: PrivateKeyLike, domain: Domain) -> Self:
        """Sign `receipt` with `private_key` and wrap it with the key's address."""
        signature = sign_receipt(receipt, private_key, domain)
        return cls.from_receipt(receipt, signature, address_of_key(private_key))

    def to_receipt(self) -> Receipt:
        """Return the signed fields as a `Receipt`."""
        return Receipt(
            worker_id=self.worker_id,
            request_hash=self.request_hash,
            app_cid=self.app_cid,
            output_hash=self.output_hash,
            fuel_used=self.fuel_used,
            epoch=self.epoch,
            sequence=self.sequence,
        )

    def digest(self, domain: Domain) -> bytes:
        """Compute the receipt's EIP-712 digest, the value that its Merkle leaf hashes."""
        return receipt_digest(self.to_receipt(), domain)

    def verify(self, domain: Domain) -> None:
        """Check that `signer` made `signature`. Raises InvalidSignatureError."""
        verify_receipt(self.to_receipt(), self.signature, domain, expected_signer=self.signer)
