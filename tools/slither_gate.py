#!/usr/bin/env python3
"""Helpers for `make lint` (tools/lint.sh), standard library only.

    slither_gate.py input OUTPUT
        Write the solc standard-JSON input that slither compiles: every
        contracts/**/*.sol source inline, with the project's compiler settings.

    slither_gate.py check REPORT [--justifications docs/security.md]
        Read slither's JSON report, print every finding in the project's own
        contracts, and exit 1 when a High or Medium impact finding has no
        justification row in docs/security.md.

Exit status of `check`: 0 when the gate passes, 1 when it fails, and 2 when
the report or the justification table is missing or invalid.
"""

from __future__ import annotations

import argparse
import collections
import fnmatch
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The same compiler settings as ape-config.yaml (solidity: optimize, evm_version)
# and the same import remapping, here pointing at the npm package that
# tools/setup.sh installs.
OPENZEPPELIN_REMAPPING = "@openzeppelin/contracts/=node_modules/@openzeppelin/contracts/"
COMPILER_SETTINGS = {
    "optimizer": {"enabled": True, "runs": 200},
    "evmVersion": "cancun",
    "remappings": [OPENZEPPELIN_REMAPPING],
}

# Findings whose primary location is under one of these folders are counted
# but neither printed nor gated: OpenZeppelin's sources and test-only harnesses.
EXCLUDED_PREFIXES = ("node_modules/", "contracts/test/")

GATED_IMPACTS = ("High", "Medium")
IMPACT_ORDER = ("High", "Medium", "Low", "Informational", "Optimization")


class GateError(Exception):
    """An input of the gate (report or justification table) is missing or invalid."""


@dataclass(frozen=True)
class Justification:
    """One row of the justification table: a detector id, a location pattern and the reason."""

    detector: str
    location: str
    reason: str
    line: int

    def matches(self, finding: Finding) -> bool:
        return self.detector == finding.detector and fnmatch.fnmatchcase(finding.location, self.location)


@dataclass(frozen=True)
class Finding:
    """One slither detector result, reduced to what the gate prints and matches."""

    detector: str
    impact: str
    confidence: str
    location: str
    path: str
    lines: str
    summary: str


# ----------------------------------------------------------------- input


def write_standard_json(output: Path) -> int:
    """Write the standard-JSON input to `output` and return the number of sources."""
    sources = {}
    for path in sorted((ROOT / "contracts").rglob("*.sol")):
        relative = path.relative_to(ROOT).as_posix()
        if "/.cache/" in relative:
            continue
        sources[relative] = {"content": path.read_text(encoding="utf-8")}
    if not sources:
        raise GateError(f"no .sol files found under {ROOT / 'contracts'}")

    document = {"language": "Solidity", "sources": sources, "settings": COMPILER_SETTINGS}
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return len(sources)


# ---------------------------------------------------------------- report


def _parent(element: dict) -> dict | None:
    return element.get("type_specific_fields", {}).get("parent")


def _location(element: dict) -> str:
    """Return `Contract.function` for the element, `Contract.member` for an
    event or state variable, `Contract` for a contract, and the file name for
    elements outside any contract (such as pragma directives)."""
    contract = None
    function = None
    node: dict | None = element
    while node is not None:
        if node.get("type") == "function" and function is None:
            function = node.get("name")
        if node.get("type") == "contract" and contract is None:
            contract = node.get("name")
        node = _parent(node)

    if contract and function:
        return f"{contract}.{function}"
    if contract and element.get("type") != "contract":
        return f"{contract}.{element.get('name')}"
    if contract:
        return contract
    return element.get("source_mapping", {}).get("filename_relative", "?")


def _finding(result: dict) -> Finding:
    elements = result.get("elements") or [{}]
    primary = elements[0]
    mapping = primary.get("source_mapping", {})
    lines = mapping.get("lines") or []
    line_range = f"{lines[0]}-{lines[-1]}" if len(lines) > 1 else "".join(str(n) for n in lines)
    # The first line names the location; when it ends in a colon, the next
    # line carries the detail (for example the offending comparison).
    description_lines = [line.strip() for line in result.get("description", "").splitlines() if line.strip()]
    summary = description_lines[0] if description_lines else ""
    if summary.endswith(":") and len(description_lines) > 1:
        summary = f"{summary} {description_lines[1]}"
    return Finding(
        detector=result["check"],
        impact=result["impact"],
        confidence=result["confidence"],
        location=_location(primary),
        path=mapping.get("filename_relative", "?"),
        lines=line_range,
        summary=summary,
    )


def read_findings(report: Path) -> list[Finding]:
    """Read slither's --json report and return every detector result."""
    try:
        document = json.loads(report.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise GateError(f"cannot read the slither report {report}: {error}") from error
    if not document.get("success"):
        raise GateError(f"slither reported a failure in {report}: {document.get('error')}")
    results = (document.get("results") or {}).get("detectors") or []
    return [_finding(result) for result in results]


# ---------------------------------------------------------- justifications


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _code(cell: str) -> str:
    """Return the text of a cell written as `code`, without the backticks."""
    return cell.strip("`").strip()


def read_justifications(document: Path) -> list[Justification]:
    """Parse the markdown table whose header starts with `Detector | Location | Reason`."""
    try:
        lines = document.read_text(encoding="utf-8").splitlines()
    except OSError as error:
        raise GateError(f"cannot read the justification table in {document}: {error}") from error

    rows: list[Justification] = []
    in_table = False
    found_header = False
    for number, line in enumerate(lines, start=1):
        if not line.lstrip().startswith("|"):
            in_table = False
            continue
        cells = _cells(line)
        if [cell.lower() for cell in cells[:3]] == ["detector", "location", "reason"]:
            in_table = True
            found_header = True
            continue
        if not in_table or set("".join(cells)) <= set("-: "):
            continue
        if len(cells) != 3 or not all(cells):
            raise GateError(
                f"{document}:{number}: invalid justification row {line.strip()!r}; "
                "expected three non-empty cells: | detector | Contract.function | reason |"
            )
        rows.append(Justification(detector=_code(cells[0]), location=_code(cells[1]), reason=cells[2], line=number))

    if not found_header:
        raise GateError(f"{document}: no table with the header | Detector | Location | Reason | found")
    return rows


# ------------------------------------------------------------------ gate


def _impact_rank(impact: str) -> int:
    return IMPACT_ORDER.index(impact) if impact in IMPACT_ORDER else len(IMPACT_ORDER)


def _print_finding(finding: Finding, justification: Justification | None) -> None:
    status = f"justified ({justification.reason})" if justification else "NOT JUSTIFIED"
    print(f"  [{finding.impact}] {finding.detector} {finding.location} ({finding.path}#{finding.lines})")
    print(f"      {finding.summary}")
    print(f"      {status}")


def run_gate(findings: list[Finding], justifications: list[Justification]) -> int:
    """Print the findings and return the number of unjustified High and Medium ones."""
    excluded = [f for f in findings if f.path.startswith(EXCLUDED_PREFIXES)]
    own = [f for f in findings if not f.path.startswith(EXCLUDED_PREFIXES)]
    own.sort(key=lambda f: (_impact_rank(f.impact), f.detector, f.location))

    used: set[Justification] = set()
    failures = 0
    gated = [f for f in own if f.impact in GATED_IMPACTS]
    print(f"High and Medium impact findings: {len(gated)}")
    for finding in gated:
        justification = next((j for j in justifications if j.matches(finding)), None)
        if justification:
            used.add(justification)
        else:
            failures += 1
        _print_finding(finding, justification)

    others = [f for f in own if f.impact not in GATED_IMPACTS]
    print(f"\nLow, informational and optimization findings (reported, never fail the gate): {len(others)}")
    for finding in others:
        justification = next((j for j in justifications if j.matches(finding)), None)
        if justification:
            used.add(justification)
        print(f"  [{finding.impact}] {finding.detector} {finding.location} ({finding.path}#{finding.lines})"
              + (" - justified" if justification else ""))

    counts = collections.Counter((f.impact, f.detector) for f in own)
    print("\nCounts by detector:")
    for (impact, detector), count in sorted(counts.items(), key=lambda item: (_impact_rank(item[0][0]), item[0][1])):
        print(f"  {impact:<13} {detector:<28} {count}")
    print(f"  ({len(excluded)} findings in {', '.join(EXCLUDED_PREFIXES)} not shown)")

    for row in justifications:
        if row not in used:
            print(f"note: justification row at line {row.line} ({row.detector}, {row.location}) "
                  "matches no finding; remove it if the code it covered has changed")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    input_parser = commands.add_parser("input", help="write the solc standard-JSON input for slither")
    input_parser.add_argument("output", type=Path, help="path of the JSON file to write")
    check_parser = commands.add_parser("check", help="gate on slither's JSON report")
    check_parser.add_argument("report", type=Path, help="slither --json output")
    check_parser.add_argument("--justifications", type=Path, default=ROOT / "docs" / "security.md",
                              help="markdown file with the | Detector | Location | Reason | table")
    args = parser.parse_args(argv)

    try:
        if args.command == "input":
            count = write_standard_json(args.output)
            print(f"Wrote {args.output} with {count} sources")
            return 0
        findings = read_findings(args.report)
        justifications = read_justifications(args.justifications)
    except GateError as error:
        print(f"lint: {error}", file=sys.stderr)
        return 2

    failures = run_gate(findings, justifications)
    if failures:
        print(f"\nlint FAILED: {failures} High or Medium finding(s) are neither fixed nor justified. "
              f"Fix the code, or add a row | detector | Contract.function | reason | to {args.justifications}.")
        return 1
    print("\nlint passed: every High and Medium finding is justified.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
