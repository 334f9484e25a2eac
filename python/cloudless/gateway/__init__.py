"""The gateway: stores function packages and runs deal calls on workers, verifying every receipt.

`run_gateway(config)` is the entry point of `cloudless gateway up`.
"""

from __future__ import annotations

from cloudless.gateway.config import GatewayConfig
from cloudless.gateway.service import Gateway, run_gateway

__all__ = ["Gateway", "GatewayConfig", "run_gateway"]
