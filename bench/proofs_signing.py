"""Receipts signed and verified per second on one core: the fast path against the eth_account path.

Both paths sign and verify the same receipts under the same EIP-712 domain,
alternating round by round, and the rates are the medians over the rounds.

- eth_account path: the digest from eth_abi (`Receipt.struct_hash` and the
  domain separator computed per receipt), `Account.unsafe_sign_hash` to sign,
  and eth_keys' `Signature.recover_public_key_from_msg_hash` to recover. This
  is how `cloudless.receipts.eip712` worked before it used the fast path.
  With coincurve installed, eth_keys also calls libsecp256k1, so the gap is
  Python overhead.
- eth_account typed data: `encode_typed_data` of the whole EIP-712 payload,
  then `Account.sign_message` and `Account.recover_message`, the way most
  Python code signs typed data.
- eip712 module: the public `sign_receipt` and `verify_receipt` (with an
  expected signer), one receipt per call, which now delegate to the fast path.
- fast path: `receipt_digest_fast` and `sign_digest` per receipt, and
  `verify_receipts` over the whole batch.
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_hash.auto import keccak
from eth_keys.backends import get_backend as eth_keys_backend
from eth_keys.datatypes import Signature

from cloudless.chain.keys import anvil_account_key
from cloudless.cid import cid_to_bytes, compute_cid
from cloudless.receipts import fast
from cloudless.receipts.eip712 import Domain, Receipt, receipt_typed_data, sign_receipt, verify_receipt

__all__ = ["SigningPath", "SigningResults", "measure_signing", "one_core"]

DOMAIN = Domain(chain_id=31337, verifying_contract="0x" + "11" * 20)
# Anvil's public test account 10, which has no funds outside a local chain.
SIGNER_KEY = bytes.fromhex(anvil_account_key(10).removeprefix("0x"))
SIGNER = Account.from_key(SIGNER_KEY).address


class SigningBenchError(RuntimeError):
    """A path signed or verified differently from the others, so its rate would mean nothing."""


@dataclass(frozen=True)
class SigningPath:
    label: str
    signed_per_second: float
    verified_per_second: float


@dataclass(frozen=True)
class SigningResults:
    paths: list[SigningPath]
    receipts: int
    rounds: int
    pinning: str
    eth_keys_backend: str

    def path(self, label: str) -> SigningPath:
        return next(path for path in self.paths if path.label == label)


FAST = "fast path"
ETH_ACCOUNT = "eth_account"
TYPED_DATA = "eth_account typed data"
EIP712_MODULE = "eip712 module (per call)"


@contextmanager
def one_core() -> Iterator[str]:
    """Pin this process to one CPU while the block runs, so a rate is that of one core."""
    if not hasattr(os, "sched_setaffinity"):
        yield "not pinned (no sched_setaffinity)"
        return
    previous = os.sched_getaffinity(0)
    cpu = min(previous)
    os.sched_setaffinity(0, {cpu})
    try:
        yield f"pinned to CPU {cpu}"
    finally:
        os.sched_setaffinity(0, previous)


def sample_receipts(count: int) -> list[Receipt]:
    app_cid = cid_to_bytes(compute_cid(b"proofs benchmark package"))
    return [
        Receipt(
            worker_id=7,
            request_hash=keccak(f"request {sequence}".encode()),
            app_cid=app_cid,
            output_hash=keccak(f"output {sequence}".encode()),
            fuel_used=10_000 + sequence,
            epoch=42,
            sequence=sequence,
        )
        for sequence in range(count)
    ]


# --- the eth_account path: what eip712 did before the fast path ------------------------------


def eth_account_digest(receipt: Receipt) -> bytes:
    return keccak(b"\x19\x01" + DOMAIN.separator() + receipt.struct_hash())


def eth_account_sign(receipts: Sequence[Receipt]) -> list[bytes]:
    return [bytes(Account.unsafe_sign_hash(eth_account_digest(receipt), SIGNER_KEY).signature) for receipt in receipts]


def eth_account_verify(receipts: Sequence[Receipt], signatures: Sequence[bytes]) -> list[bool]:
    results = []
    for receipt, signature in zip(receipts, signatures):
        vrs = (signature[64] - 27, int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:64], "big"))
        public_key = Signature(vrs=vrs).recover_public_key_from_msg_hash(eth_account_digest(receipt))
        results.append(public_key.to_checksum_address() == SIGNER)
    return results


def typed_data_sign(receipts: Sequence[Receipt]) -> list[bytes]:
    return [
        bytes(Account.sign_message(encode_typed_data(full_message=receipt_typed_data(receipt, DOMAIN)), SIGNER_KEY).signature)
        for receipt in receipts
    ]


def typed_data_verify(receipts: Sequence[Receipt], signatures: Sequence[bytes]) -> list[bool]:
    return [
        Account.recover_message(encode_typed_data(full_message=receipt_typed_data(receipt, DOMAIN)), signature=signature)
        == SIGNER
        for receipt, signature in zip(receipts, signatures)
    ]


# --- the eip712 module and the fast path --------------------------------------------------------


def eip712_sign(receipts: Sequence[Receipt]) -> list[bytes]:
    return [sign_receipt(receipt, SIGNER_KEY, DOMAIN) for receipt in receipts]


def eip712_verify(receipts: Sequence[Receipt], signatures: Sequence[bytes]) -> list[bool]:
    for receipt, signature in zip(receipts, signatures):
        verify_receipt(receipt, signature, DOMAIN, expected_signer=SIGNER)
    return [True] * len(receipts)


def fast_sign(receipts: Sequence[Receipt]) -> list[bytes]:
    return [fast.sign_digest(fast.receipt_digest_fast(receipt, DOMAIN), SIGNER_KEY) for receipt in receipts]


def fast_verify(receipts: Sequence[Receipt], signatures: Sequence[bytes]) -> list[bool]:
    return fast.verify_receipts(list(zip(receipts, signatures)), DOMAIN, SIGNER)


Signer = Callable[[Sequence[Receipt]], list[bytes]]
Verifier = Callable[[Sequence[Receipt], Sequence[bytes]], list[bool]]


def _timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def measure_signing(
    receipt_count: int,
    rounds: int,
    *,
    typed_data_count: int,
    report: Callable[[str], None] = lambda _: None,
) -> SigningResults:
    """Sign and verify `receipt_count` receipts per path and round on one core; return median rates.

    The typed-data path is about 7 times slower than the fast path, so it
    runs on the first `typed_data_count` receipts only. Raises
    SigningBenchError when a path's signatures differ from eth_account's or a
    valid signature does not verify.
    """
    receipts = sample_receipts(receipt_count)
    paths: dict[str, tuple[Signer, Verifier, int]] = {
        ETH_ACCOUNT: (eth_account_sign, eth_account_verify, receipt_count),
        TYPED_DATA: (typed_data_sign, typed_data_verify, min(typed_data_count, receipt_count)),
        EIP712_MODULE: (eip712_sign, eip712_verify, receipt_count),
        FAST: (fast_sign, fast_verify, receipt_count),
    }

    # Every path must produce the same signatures and accept all of them, or a rate compares different work.
    reference = eth_account_sign(receipts)
    for label, (sign, verify, count) in paths.items():
        if sign(receipts[:count]) != reference[:count]:
            raise SigningBenchError(f"{label} signed the benchmark receipts differently from eth_account")
        if verify(receipts[:count], reference[:count]) != [True] * count:
            raise SigningBenchError(f"{label} rejected valid signatures of the benchmark receipts")
    tampered = reference[0][:64] + bytes([55 - reference[0][64]])
    if fast_verify(receipts[:1], [tampered]) != [False]:
        raise SigningBenchError("the fast path accepted a signature with a flipped v")

    signing_rates: dict[str, list[float]] = {label: [] for label in paths}
    verifying_rates: dict[str, list[float]] = {label: [] for label in paths}
    with one_core() as pinning:
        for round_number in range(rounds):
            report(f"signing and verifying {receipt_count:,} receipts per path, round {round_number + 1} of {rounds}")
            for label, (sign, verify, count) in paths.items():
                batch = receipts[:count]
                signatures = reference[:count]
                signing_rates[label].append(count / _timed(lambda: sign(batch)))
                verifying_rates[label].append(count / _timed(lambda: verify(batch, signatures)))

    return SigningResults(
        paths=[
            SigningPath(label, statistics.median(signing_rates[label]), statistics.median(verifying_rates[label]))
            for label in paths
        ],
        receipts=receipt_count,
        rounds=rounds,
        pinning=pinning,
        eth_keys_backend=type(eth_keys_backend()).__name__,
    )
