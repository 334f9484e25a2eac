"""Bind a node's data directory to one chain instance.

Receipts are only meaningful for the chain they were signed for. A local
chain restarted and redeployed gets the same chain id and contract addresses,
so the identity also records the hash of the DealManager's deployment block,
which differs between chain instances.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from cloudless.chain.session import Session
from cloudless.exceptions import ConfigError

__all__ = ["check_chain_identity"]

logger = logging.getLogger("cloudless.node")

IDENTITY_FILE = "chain.json"


def _current_identity(session: Session) -> dict[str, object]:
    deployment = session.deployment
    block = deployment.contracts["DealManager"].block
    block_hash = session.client.w3.eth.get_block(block)["hash"]
    return {
        "chain_id": deployment.chain_id,
        "deal_manager": session.deals.address,
        "deployment_block": block,
        "deployment_block_hash": "0x" + bytes(block_hash).hex(),
    }


def check_chain_identity(
    data_dir: Path, session: Session, *, setting: str = "data_dir", contents: str = "receipts"
) -> None:
    """Record the chain in `data_dir/chain.json`, or raise ConfigError if the directory belongs to another chain.

    `setting` names the option that chose the directory, and `contents` what
    it holds, for the error message.
    """
    current = _current_identity(session)
    path = data_dir / IDENTITY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(current, indent=2) + "\n")
        logger.info("bound data directory %s to chain %s", data_dir, current["chain_id"])
        return

    stored = json.loads(path.read_text())
    if stored != current:
        raise ConfigError(
            f"{setting} {data_dir} contains {contents} of another chain instance (stored {stored}, connected "
            f"{current}); the chain was probably reset and redeployed: move or delete {data_dir}, or set another {setting}"
        )
