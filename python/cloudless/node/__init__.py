"""The provider node: runs deal workers' functions, signs receipts, proves epochs and claims earnings.

`run_node(config_path)` is the entry point of `cloudless provider up`.
"""

from __future__ import annotations

from cloudless.node.config import NodeConfig, load_node_config
from cloudless.node.service import ProviderNode, run_node

__all__ = ["NodeConfig", "ProviderNode", "load_node_config", "run_node"]
