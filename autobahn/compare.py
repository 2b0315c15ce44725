"""Compares an Autobahn|Testsuite report with the committed expectation.

usage: compare.py EXPECTED_JSON EXPECTED_CASE_COUNT INDEX_JSON...

Prints a summary per case group, every case whose behavior or behaviorClose differs from the
expectation (better or worse), and a last line "N passed, N failed". Exits 1 on any difference or
if the reports together do not hold EXPECTED_CASE_COUNT cases (0 skips that check, for subset runs).
Works under Python 2.7 (the suite's) and 3.
"""
from __future__ import print_function

import collections
import json
import sys


def case_key(case_id):
    return [int(part) for part in case_id.split(".")]


def main():
    expected_path, expected_count, index_paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    results = {}
    for index_path in index_paths:
        report = json.load(open(index_path))
        if len(report) != 1:
            print("expected one agent in %s, found %d" % (index_path, len(report)))
            return 1
        results.update(list(report.values())[0])
    expected = json.load(open(expected_path))

    passed, failed = 0, 0
    groups = collections.OrderedDict()
    differences = []
    for case_id in sorted(results, key=case_key):
        got = [results[case_id]["behavior"], results[case_id]["behaviorClose"]]
        want = expected.get(case_id)
        group = groups.setdefault(case_id.split(".")[0], collections.Counter())
        group["/".join(got)] += 1
        if want is None and expected_count:
            differences.append("%s: not in the expectation file, got %s" % (case_id, "/".join(got)))
            failed += 1
        elif want is not None and got != want:
            differences.append("%s: expected %s, got %s" % (case_id, "/".join(want), "/".join(got)))
            failed += 1
        else:
            passed += 1

    print("Autobahn|Testsuite results by group (behavior/behaviorClose):")
    for group, counts in groups.items():
        print("  %-3s %s" % (group, ", ".join("%s x%d" % (k, v) for k, v in sorted(counts.items()))))
    if expected_count:
        missing = sorted(set(expected) - set(results), key=case_key)
        for case_id in missing:
            differences.append("%s: expected in the report, missing" % case_id)
            failed += 1
        if len(results) != expected_count:
            differences.append("the report has %d cases, expected %d" % (len(results), expected_count))
            failed += 1
    if differences:
        print("Differences from %s:" % expected_path.split("/")[-1])
        for line in differences:
            print("  " + line)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
