"""Cloudless: decentralized serverless functions on an EVM compute market."""

__version__ = "0.1.0"
