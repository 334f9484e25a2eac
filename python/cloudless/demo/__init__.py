"""`cloudless demo`: the whole market end to end on a local chain."""

from cloudless.demo.scenario import DemoSettings, run_demo
from cloudless.demo.summary import DemoSummary, print_summary

__all__ = ["DemoSettings", "DemoSummary", "print_summary", "run_demo"]
