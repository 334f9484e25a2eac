"""Print one closing line that sums up JUnit XML reports: 'N passed, N failed, N skipped'."""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ElementTree


def main(paths: list[str]) -> int:
    passed = failed = skipped = 0
    for path in paths:
        try:
            root = ElementTree.parse(path).getroot()
        except (OSError, ElementTree.ParseError) as error:
            print(f"cannot read test report {path}: {error}", file=sys.stderr)
            failed += 1
            continue
        for suite in root.iter("testsuite"):
            tests = int(suite.get("tests", 0))
            suite_failed = int(suite.get("failures", 0)) + int(suite.get("errors", 0))
            suite_skipped = int(suite.get("skipped", 0))
            failed += suite_failed
            skipped += suite_skipped
            passed += tests - suite_failed - suite_skipped
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
