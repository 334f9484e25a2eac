"""The one binding layer over web3.py that scripts, the CLI and the services use.

ABIs come from Ape's build output, addresses from `deployments/<chain-id>.json`.
"""

from __future__ import annotations

from cloudless.chain.client import ChainClient, connect_web3
from cloudless.chain.deals import ClaimResult, DealClient, MatchResult
from cloudless.chain.deploy import DeploySettings, deploy_all
from cloudless.chain.deployment import Deployment, deployment_path, load_deployment
from cloudless.chain.faucet import DripResult, FaucetClient
from cloudless.chain.market import MarketClient
from cloudless.chain.session import Session, connect
from cloudless.chain.tokens import TokenClient, format_units, parse_units

__all__ = [
    "ChainClient",
    "ClaimResult",
    "DealClient",
    "Deployment",
    "DeploySettings",
    "DripResult",
    "FaucetClient",
    "MarketClient",
    "MatchResult",
    "Session",
    "TokenClient",
    "connect",
    "connect_web3",
    "deploy_all",
    "deployment_path",
    "format_units",
    "load_deployment",
    "parse_units",
]
