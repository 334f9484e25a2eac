"""Constants, enum values and helpers shared by the contract tests."""

from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from cloudless.chain.types import BillingMode, DealStatus, SkipReason

EPOCH_SECONDS = 600
"""Epoch length of the test DealManager.

Anvil advances block timestamps with the wall clock after a time jump, so
ten-minute epochs keep a test's transactions inside the epoch it moved to.
"""
PROOF_WINDOW_EPOCHS = 2
MIN_DEPOSITED_EPOCHS = 2

# The DealManager and ChallengeManager of the challenge tests. Epoch e is proven
# in epochs e+1 and e+2, challenged in e+3 and e+4, and claimed from e+5 on.
CHALLENGE_WINDOW_EPOCHS = 2
CHALLENGE_BOND = 10 * 10**18  # FLT wei
SLASH_AMOUNT = 100 * 10**18  # FLT wei per upheld challenge or fraud proof
MISSED_PROOF_SLASH_AMOUNT = 10 * 10**18  # FLT wei per unproven funded epoch
ANSWER_PERIOD = 300
"""Seconds a peer has to answer. Half an epoch, so a challenge opened one second
into an epoch is due, and can be resolved, in that same epoch."""
COLLATERAL_PER_CU = 10**18
UNBONDING_SECONDS = 3_600

USDC = 10**6
FLT = 10**18
PRICE = 2 * USDC // 100
"""Default offer price per CU per epoch: 0.02 USDC."""
REGION = 276
UINT64_MAX = 2**64 - 1

DEAL_FIELDS = (
    "appCid",
    "paymentToken",
    "maxPricePerCuPerEpoch",
    "cuPerWorker",
    "minWorkers",
    "targetWorkers",
    "maxWorkersPerProvider",
    "durationEpochs",
    "regions",
    "minTier",
    "minSlaBps",
    "accessMode",
    "providers",
    "billingMode",
    "usagePricePerMegafuel",
    "maxUsagePerWorkerEpoch",
    "deposit",
)


# The Python mirrors of IDealManager.SkipReason, DealStatus and BillingMode (IntEnum, so they equal the raw values).
Skip = SkipReason
Status = DealStatus
Billing = BillingMode

EPOCH_PROOF_ENTRY_ABI = "(uint256,uint64,bytes32,uint64,uint64)"
"""ABI tuple of IDealManager.EpochProofEntry: workerId, epoch, receiptsRoot, calls, usage."""


class Access:
    """Values of IDealManager.AccessMode."""

    NONE = 0
    ALLOW_LIST = 1
    DENY_LIST = 2


@dataclass
class Clock:
    """Moves chain time in whole epochs of the DealManager."""

    chain: object
    genesis: int
    epoch_seconds: int = EPOCH_SECONDS

    def epoch(self) -> int:
        """Return the epoch of the next block, which is the epoch that the next transaction reads."""
        return (self.chain.pending_timestamp - self.genesis) // self.epoch_seconds

    def goto_epoch(self, epoch: int) -> None:
        """Mine a block one second into `epoch`, which must not be in the past."""
        target = self.genesis + epoch * self.epoch_seconds + 1
        latest = self.chain.blocks.head.timestamp
        assert target > latest, f"cannot move back to epoch {epoch}: head timestamp {latest} >= {target}"
        self.chain.mine(timestamp=target)

    def advance(self, epochs: int = 1) -> int:
        """Move `epochs` epochs forward and return the new epoch."""
        target = self.epoch() + epochs
        self.goto_epoch(target)
        return target


def events(receipt, event_type):
    """Return the decoded logs of one event type in a receipt, in order."""
    return list(receipt.events.filter(event_type))


def proof_batch_hash(entries):
    """Return the batch hash of EpochProofsSubmitted, keccak256(abi.encode(entries)), computed off chain.

    `entries` is a list of (workerId, epoch, receiptsRoot, calls, usage) tuples.
    """
    return keccak(abi_encode([f"{EPOCH_PROOF_ENTRY_ABI}[]"], [list(entries)]))


def skip_reasons(receipt, deal_manager):
    """Return the CandidateSkipped reasons of a receipt as (peer id, reason) pairs."""
    return [(log.peerId, log.reason) for log in receipt.events.filter(deal_manager.CandidateSkipped)]


@dataclass
class Builder:
    """Creates offers and deals with defaults that a test overrides per call."""

    market: object
    deal_manager: object
    usdc: object
    developer: object
    signers: list
    next_signer: int = 0

    def offer(self, provider, cus=(8,), price=PRICE, token=None, region=REGION, tier=3, sla=9_990, signers=None):
        """Create an offer with one peer per entry of `cus` and return (offer id, peer ids)."""
        terms = (token or self.usdc, price, region, tier, sla, 2, 2_048)
        if signers is None:
            signers = [self._take_signer() for _ in cus]
        peers = [(signer, count) for signer, count in zip(signers, cus, strict=True)]
        receipt = self.market.createOffer(terms, peers, sender=provider)
        offer_id = next(iter(receipt.events.filter(self.market.OfferCreated))).offerId
        peer_ids = [log.peerId for log in receipt.events.filter(self.market.PeerAdded)]
        return offer_id, peer_ids

    def deal_params(self, **overrides):
        params = {
            "appCid": b"\x01\x55\x12\x20" + bytes(32),
            "paymentToken": self.usdc.address,
            "maxPricePerCuPerEpoch": PRICE,
            "cuPerWorker": 2,
            "minWorkers": 1,
            "targetWorkers": 2,
            "maxWorkersPerProvider": 2,
            "durationEpochs": 0,
            "regions": [],
            "minTier": 0,
            "minSlaBps": 0,
            "accessMode": Access.NONE,
            "providers": [],
            "billingMode": Billing.SUBSCRIPTION,
            "usagePricePerMegafuel": 0,
            "maxUsagePerWorkerEpoch": 0,
            "deposit": 100 * USDC,
        }
        params.update(overrides)
        return tuple(params[name] for name in DEAL_FIELDS)

    def deal(self, sender=None, **overrides):
        """Create a deal and return its id."""
        receipt = self.deal_manager.createDeal(self.deal_params(**overrides), sender=sender or self.developer)
        return next(iter(receipt.events.filter(self.deal_manager.DealCreated))).dealId

    def match(self, deal_id, peer_ids, sender=None):
        """Match the deal on `peer_ids` and return (receipt, new worker ids)."""
        receipt = self.deal_manager.matchDeal(deal_id, list(peer_ids), sender=sender or self.developer)
        worker_ids = [log.workerId for log in receipt.events.filter(self.deal_manager.WorkerJoined)]
        return receipt, worker_ids

    def matched_deal(self, provider, cus=(8,), price=PRICE, **deal_overrides):
        """Create an offer and a deal, match one worker and return (deal id, worker id, peer id)."""
        _, peer_ids = self.offer(provider, cus=cus, price=price)
        deal_id = self.deal(**deal_overrides)
        _, worker_ids = self.match(deal_id, peer_ids[:1])
        return deal_id, worker_ids[0], peer_ids[0]

    def _take_signer(self):
        if self.next_signer < len(self.signers):
            signer = self.signers[self.next_signer].address
        else:
            # Signers that never send a transaction need no key or ETH.
            signer = "0x" + f"{0x5157_0000 + self.next_signer:040x}"
        self.next_signer += 1
        return signer


@contextmanager
def isolated(chain):
    """Roll the chain back after the block, for one hypothesis example.

    Ape snapshots once per test function, not per example. `chain.isolate()`
    would swallow failed asserts, so this uses snapshot and restore.
    """
    snapshot = chain.snapshot()
    try:
        yield
    finally:
        chain.restore(snapshot)


class RawRpc:
    """Batched view reads and revert checks over raw JSON-RPC.

    The invariants run after every step, so one HTTP round trip per step
    instead of one per view keeps the state machine fast.
    """

    def __init__(self, web3):
        self.web3 = web3
        self.pending = []

    def add(self, contract, method_name, *arguments) -> None:
        [abi] = [method for method in contract.contract_type.view_methods if method.name == method_name]
        input_types = [item.canonical_type for item in abi.inputs]
        selector = keccak(abi.selector.encode())[:4]
        calldata = selector + self.web3.codec.encode(input_types, arguments)
        request = {"to": contract.address, "data": "0x" + calldata.hex()}
        self.pending.append((request, abi.outputs[0]))

    def assert_reverts(self, handler, arguments, sender, error, **inputs) -> None:
        """Check with eth_call that the transaction would revert with the custom `error`.

        A reverted transaction changes no contract state, so a call shows the
        same outcome as sending it, without ape's trace work on every revert.
        With `inputs`, the error's arguments must equal them too.
        """
        calldata = bytes(handler.encode_input(*arguments))
        request = {"from": sender.address, "to": handler.contract.address, "data": "0x" + calldata.hex()}
        response = self.web3.provider.make_request("eth_call", [request, "latest"])
        assert "error" in response, f"expected {error.abi.name}, but the call succeeded"
        revert_data = response["error"].get("data") or ""
        expected = "0x" + keccak(error.abi.selector.encode())[:4].hex()
        if inputs:
            names = [item.name for item in error.abi.inputs]
            types = [item.canonical_type for item in error.abi.inputs]
            expected += abi_encode(types, [inputs[name] for name in names]).hex()
            assert revert_data == expected, f"expected {error.abi.name}{inputs}, got revert data {revert_data}"
        assert revert_data[:10] == expected[:10], f"expected {error.abi.name}, got revert data {revert_data}"

    def execute(self) -> list:
        """Send the queued calls and return their decoded outputs in order. Struct outputs become namespaces."""
        requests = [("eth_call", [request, "latest"]) for request, _ in self.pending]
        responses = self.web3.provider.make_batch_request(requests)
        results = []
        for (_, output), response in zip(self.pending, responses, strict=True):
            raw = bytes.fromhex(response["result"][2:])
            [value] = self.web3.codec.decode([output.canonical_type], raw)
            if output.components:
                value = SimpleNamespace(**dict(zip([c.name for c in output.components], value, strict=True)))
            results.append(value)
        self.pending = []
        return results
