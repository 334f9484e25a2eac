"""The JSON that the verifier reads: a node's receipts of one worker epoch and a gateway's evidence feed.

`GET /workers/{worker_id}/epochs/{epoch}/receipts` on a provider node returns
a `ServedEpoch`, with the receipts in leaf order. `GET /evidence?since=N` on a
gateway returns an `EvidencePage`. Unknown top-level fields are ignored, so a
producer may add fields without breaking older verifiers; the signed request
and receipt models stay strict.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloudless.exceptions import MerkleProofError
from cloudless.receipts.merkle import LeafOpening
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

__all__ = ["EvidenceItem", "EvidencePage", "ServedEpoch", "ServedReceipt", "decode_base64"]


def decode_base64(value: str, field: str) -> bytes:
    """Decode strict base64, raising ValueError that names `field`."""
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as error:
        raise ValueError(f"{field} is not valid base64: {error}") from None


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore", arbitrary_types_allowed=True)


class ServedReceipt(_Model):
    """One leaf of a served epoch: the receipt, its request, the call's input and the leaf opening."""

    index: int = Field(ge=0)
    receipt: SignedReceipt
    request: SignedCallRequest
    input: str  # base64 of the call's input bytes
    opening: LeafOpening

    @field_validator("opening", mode="before")
    @classmethod
    def _parse_opening(cls, value: Any) -> LeafOpening:
        if isinstance(value, LeafOpening):
            return value
        if not isinstance(value, dict):
            raise ValueError(f"opening must be an object, got {type(value).__name__}")
        try:
            return LeafOpening.from_json(value)
        except MerkleProofError as error:
            raise ValueError(str(error)) from None

    @field_validator("input")
    @classmethod
    def _check_input(cls, value: str) -> str:
        decode_base64(value, "input")
        return value

    @property
    def input_bytes(self) -> bytes:
        return base64.b64decode(self.input)


class ServedEpoch(_Model):
    """A node's receipts of one worker and epoch, with the root, call count and usage it proved."""

    worker_id: int = Field(ge=0)
    epoch: int = Field(ge=0)
    root: str
    calls: int = Field(ge=0)
    usage: int = Field(ge=0)
    receipts: list[ServedReceipt]

    @field_validator("root")
    @classmethod
    def _check_root(cls, value: str) -> str:
        if not value.startswith("0x") or len(value) != 66:
            raise ValueError(f"root must be 0x and 64 hex digits, got {value!r}")
        bytes.fromhex(value[2:])
        return value

    @property
    def root_bytes(self) -> bytes:
        return bytes.fromhex(self.root[2:])


class EvidenceItem(_Model):
    """One replicated call whose receipts disagreed, as a gateway recorded it."""

    id: int = Field(ge=0)
    kind: str
    deal_id: int = Field(ge=0)
    function: str
    request: SignedCallRequest
    input: str  # base64 of the call's input bytes
    receipts: list[SignedReceipt]

    @property
    def input_bytes(self) -> bytes:
        return decode_base64(self.input, f"evidence item {self.id} input")


class EvidencePage(_Model):
    """`GET /evidence?since=N`: items with id >= N, and the id to ask for next.

    Items stay raw JSON objects here, so that an item of a kind this verifier
    does not know, or one malformed item, does not hide the others. Parse
    "disagreement" items with `EvidenceItem.model_validate`.
    """

    next: int = Field(ge=0)
    items: list[dict[str, Any]]
