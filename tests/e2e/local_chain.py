"""Test-side name of `cloudless.chain.local_anvil`, which the benchmarks share."""

from cloudless.chain.local_anvil import LocalChain, free_port, local_chain, running_anvil

__all__ = ["LocalChain", "free_port", "local_chain", "running_anvil"]
