"""Signed calls, receipt trees, epoch proofs and challenge answers for the ChallengeManager tests.

Requests and receipts are signed with `cloudless.receipts` under the EIP-712
domain of the ExecutionReceipts contract, and the trees are
`ReceiptMerkleTree`s. So these tests check the contracts against the Python
code that nodes and verifiers run.
"""

from dataclasses import dataclass, field

from eth_abi import encode as abi_encode
from eth_hash.auto import keccak

from cloudless.chain.challenges import Fault, signed_call_tuple, signed_receipt_tuple
from cloudless.receipts.eip712 import CallRequest, Domain, Receipt, hash_output
from cloudless.receipts.merkle import NO_OPENING, ReceiptMerkleTree
from cloudless.receipts.models import SignedCallRequest, SignedReceipt

from contract_helpers import ANSWER_PERIOD, CHALLENGE_WINDOW_EPOCHS, EPOCH_SECONDS, PROOF_WINDOW_EPOCHS, events

CALLER_KEY = keccak(b"cloudless contract tests: caller")
"""Key of the caller that signs requests. It never sends a transaction."""
OTHER_KEY = keccak(b"cloudless contract tests: not a peer signer")
"""Key of no peer, for receipts that the worker's peer did not sign."""
APP_CID = b"\x01\x55\x12\x20" + bytes(32)
"""The app CID of `Builder.deal_params`, which receipts repeat."""

_FRAUD_KEY_TYPES = {
    Fault.EQUIVOCATION: ["uint8", "address", "bytes32"],  # signer, request hash
    Fault.DISAGREEMENT: ["uint8", "uint256", "bytes32"],  # worker id, request hash
    Fault.MISSED_PROOF: ["uint8", "uint256", "uint64"],  # worker id, epoch
}


def fraud_key(fault: Fault, first, second) -> bytes:
    """Compute the ChallengeManager's fraud key, keccak256(abi.encode(fault, first, second))."""
    return keccak(abi_encode(_FRAUD_KEY_TYPES[fault], [int(fault), first, second]))


@dataclass(frozen=True)
class Worker:
    """A worker of the challenge DealManager and the accounts behind it."""

    deal_id: int
    worker_id: int
    peer_id: int
    provider: object  # Ape account
    signer: object  # Ape test account of the peer signer, with its private key

    @property
    def key(self) -> str:
        return self.signer.private_key


@dataclass(frozen=True)
class Call:
    """A caller's signed request and the peer's signed receipt for it."""

    request: SignedCallRequest
    receipt: SignedReceipt
    digest: bytes  # EIP-712 digest of the receipt, which its Merkle leaf commits

    def signed_call(self) -> tuple:
        return signed_call_tuple(self.request, self.receipt)

    def signed_receipt(self) -> tuple:
        return signed_receipt_tuple(self.receipt)


@dataclass(frozen=True)
class ProvenEpoch:
    """An epoch proof as submitted: the calls behind it, their tree and the recorded batch."""

    worker: Worker
    epoch: int
    calls: list
    tree: ReceiptMerkleTree
    batch: list  # EpochProofEntry tuples: workerId, epoch, receiptsRoot, calls, usage
    entry_index: int = 0

    @property
    def entry(self) -> tuple:
        return self.batch[self.entry_index]

    def answer(self, index: int) -> tuple:
        """Return the (SignedCall, leaf, next leaf) arguments that answer a challenge of leaf `index`."""
        leaf = self.tree.opening(index)
        next_leaf = self.tree.opening(index + 1) if index + 1 < len(self.tree) else NO_OPENING
        return self.calls[index].signed_call(), leaf.as_tuple(), next_leaf.as_tuple()


@dataclass
class ChallengeEnv:
    """The challenge contracts, their accounts and builders of workers, calls, proofs and challenges."""

    chain: object
    clock: object
    build: object
    market: object
    deal_manager: object
    challenge_manager: object
    receipts: object
    domain: Domain
    flt: object
    admin: object
    developer: object
    challenger: object
    providers: list
    signers: list
    _nonce: int = field(default=0)

    # --------------------------------------------------------------- workers

    def matched_worker(self, provider_index: int = 0, signer_index: int | None = None, **deal_overrides) -> Worker:
        """Create an offer with one peer, a deal and its worker on that peer."""
        provider = self.providers[provider_index]
        signer = self.signers[provider_index if signer_index is None else signer_index]
        _, [peer_id] = self.build.offer(provider, signers=[signer.address])
        return self.worker_on(provider, signer, peer_id, **deal_overrides)

    def worker_on(self, provider, signer, peer_id: int, **deal_overrides) -> Worker:
        """Create a deal and match its worker on an existing peer."""
        deal_id = self.build.deal(**deal_overrides)
        _, [worker_id] = self.build.match(deal_id, [peer_id])
        return Worker(deal_id, worker_id, peer_id, provider, signer)

    def replicated_workers(self) -> list:
        """Create a deal with four workers: providers 0, 1, 2 and 0 again, signed by signers 0 to 3."""
        layout = [(0, 0), (1, 1), (2, 2), (0, 3)]
        peers = []
        for provider_index, signer_index in layout:
            _, [peer_id] = self.build.offer(self.providers[provider_index], signers=[self.signers[signer_index].address])
            peers.append(peer_id)
        deal_id = self.build.deal(targetWorkers=4, maxWorkersPerProvider=2)
        _, worker_ids = self.build.match(deal_id, peers)
        return [
            Worker(deal_id, worker_id, peer_id, self.providers[provider_index], self.signers[signer_index])
            for worker_id, peer_id, (provider_index, signer_index) in zip(worker_ids, peers, layout, strict=True)
        ]

    # ------------------------------------------------------- requests, receipts

    def request(self, deal_id: int, *, deadline: int | None = None, caller_key: bytes = CALLER_KEY) -> SignedCallRequest:
        """Sign a new request (a fresh nonce) for the deal, valid until an hour after now by default."""
        self._nonce += 1
        if deadline is None:
            deadline = self.chain.pending_timestamp + 3_600
        request = CallRequest.for_input(
            deal_id=deal_id, function_name="echo", input=b"input %d" % self._nonce, nonce=self._nonce, deadline=deadline
        )
        return SignedCallRequest.sign(request, caller_key, self.domain)

    def receipt(
        self,
        request: SignedCallRequest,
        worker: Worker,
        epoch: int,
        *,
        fuel: int = 1_000,
        sequence: int = 0,
        output: bytes = b"output",
        worker_id: int | None = None,
        signer_key=None,
    ) -> SignedReceipt:
        """Sign the worker's receipt for `request`, by its peer signer unless `signer_key` is given."""
        receipt = Receipt(
            worker_id=worker.worker_id if worker_id is None else worker_id,
            request_hash=request.digest(self.domain),
            app_cid=APP_CID,
            output_hash=hash_output(output),
            fuel_used=fuel,
            epoch=epoch,
            sequence=sequence,
        )
        return SignedReceipt.sign(receipt, worker.key if signer_key is None else signer_key, self.domain)

    def pair(self, request: SignedCallRequest, receipt: SignedReceipt) -> Call:
        return Call(request, receipt, receipt.digest(self.domain))

    def call(self, worker: Worker, epoch: int, *, deal_id: int | None = None, deadline: int | None = None, **receipt_changes) -> Call:
        """Sign a request of the worker's deal (or of `deal_id`) and the worker's receipt for it."""
        request = self.request(worker.deal_id if deal_id is None else deal_id, deadline=deadline)
        return self.pair(request, self.receipt(request, worker, epoch, **receipt_changes))

    def calls(self, worker: Worker, epoch: int, fuels) -> list:
        """Sign one honest call per entry of `fuels`, in sequence order."""
        return [self.call(worker, epoch, fuel=fuel, sequence=sequence) for sequence, fuel in enumerate(fuels)]

    def tree(self, calls, fuels=None) -> ReceiptMerkleTree:
        """Build the calls' tree, with the receipts' own fuel unless `fuels` overrides it."""
        if fuels is None:
            fuels = [call.receipt.fuel_used for call in calls]
        return ReceiptMerkleTree([(call.digest, fuel) for call, fuel in zip(calls, fuels, strict=True)])

    # ----------------------------------------------------------------- proofs

    def prove(self, worker: Worker, epoch: int, calls, *, tree=None, usage: int | None = None, root=None, count=None) -> ProvenEpoch:
        """Submit the proof of the calls' tree, or of a forged root, call count or usage."""
        tree = self.tree(calls) if tree is None else tree
        entry = (
            worker.worker_id,
            epoch,
            tree.root if root is None else root,
            len(calls) if count is None else count,
            tree.total_fuel if usage is None else usage,
        )
        self.deal_manager.submitEpochProofs([entry], sender=worker.signer)
        return ProvenEpoch(worker, epoch, list(calls), tree, [entry])

    def proven(self, worker_id: int, epoch: int) -> bool:
        return self.deal_manager.getEpochProof(worker_id, epoch).proven

    # --------------------------------------------------------------- timeline

    def epoch_start(self, epoch: int) -> int:
        return self.clock.genesis + epoch * EPOCH_SECONDS

    def opens_at(self, epoch: int) -> int:
        """Unix seconds at which the epoch's proof window has closed and challenges open."""
        return self.epoch_start(epoch + PROOF_WINDOW_EPOCHS + 1)

    def closes_at(self, epoch: int) -> int:
        """Last unix second at which the epoch may be challenged: the answer deadline
        then falls one second before claims open."""
        return self.epoch_start(self.claims_epoch(epoch)) - ANSWER_PERIOD - 1

    @staticmethod
    def claims_epoch(epoch: int) -> int:
        """First epoch in which the epoch can be claimed."""
        return epoch + PROOF_WINDOW_EPOCHS + CHALLENGE_WINDOW_EPOCHS + 1

    def goto_window(self, epoch: int) -> None:
        """Move to the first epoch of the epoch's challenge window."""
        self.clock.goto_epoch(epoch + PROOF_WINDOW_EPOCHS + 1)

    def pass_deadline(self, deadline: int) -> None:
        self.chain.mine(timestamp=deadline + 1)

    # ------------------------------------------------------------- challenges

    def challenge_sample(self, proven: ProvenEpoch, sender=None):
        """Open a SAMPLE challenge of the proof and return its ChallengeOpened log."""
        tx = self.challenge_manager.challengeSample(proven.batch, proven.entry_index, sender=sender or self.challenger)
        [log] = events(tx, self.challenge_manager.ChallengeOpened)
        return log

    def challenge_receipt(self, proven: ProvenEpoch, call: Call, sender=None):
        """Open a RECEIPT challenge of the proof naming `call` and return its ChallengeOpened log."""
        tx = self.challenge_manager.challengeReceipt(
            proven.batch, proven.entry_index, call.signed_receipt(), sender=sender or self.challenger
        )
        [log] = events(tx, self.challenge_manager.ChallengeOpened)
        return log

    def answer(self, challenge_id: int, proven: ProvenEpoch, index: int, sender=None):
        """Answer with leaf `index` of the proof's tree, from the peer signer unless `sender` is given."""
        return self.challenge_manager.answerChallenge(
            challenge_id, *proven.answer(index), sender=sender or proven.worker.signer
        )

    def status(self, challenge_id: int) -> int:
        return self.challenge_manager.getChallenge(challenge_id).status
