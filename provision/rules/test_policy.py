"""The policy rules, each seen to pass what it should and to fail what it should: every fixture
names in its first line (`# expect: E90xx …`) exactly the policy rules it breaks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

RULES = Path(__file__).parent
FIXTURES = sorted((RULES / "fixtures").glob("*.yaml"))
CFN_LINT = Path(sys.executable).with_name("cfn-lint")


def policy_findings(template: Path) -> dict[str, list[str]]:
    run = subprocess.run(
        [str(CFN_LINT), "--append-rules", str(RULES), "--format", "json", str(template)],
        capture_output=True, text=True, check=False,
    )
    findings: dict[str, list[str]] = {}
    for match in json.loads(run.stdout or "[]"):
        rule = match["Rule"]["Id"]
        if rule.startswith("E90"):
            findings.setdefault(rule, []).append(match["Message"])
    return findings


@pytest.mark.parametrize("template", FIXTURES, ids=[f.stem for f in FIXTURES])
def test_fixture_breaks_exactly_the_rules_it_names(template: Path):
    first = template.read_text().splitlines()[0]
    assert first.startswith("# expect:"), f"{template.name}: first line must be '# expect: …'"
    expected = set(first.removeprefix("# expect:").split())
    findings = policy_findings(template)
    assert set(findings) == expected, (
        f"{template.name}: expected {sorted(expected)}, found {json.dumps(findings, indent=2)}")


def test_the_messages_name_the_resource_and_the_fix():
    findings = policy_findings(RULES / "fixtures" / "bad-data.yaml")
    assert any("Database: MultiAZ must be true" in m for m in findings["E9001"])
    assert any("Nodes: MinValue must be 2 or more" in m for m in findings["E9001"])
    assert any("Bucket: no bucket policy denies requests without TLS" in m for m in findings["E9003"])
    assert any("Database: DeletionPolicy must be Snapshot or Retain, not Delete" in m for m in findings["E9005"])


def test_the_schedule_checks():
    sys.path.insert(0, str(RULES))
    from voltfleet_policy import aws_schedule_problem, unix_cron_problem

    assert aws_schedule_problem("cron(0 3 * * ? *)") is None
    assert aws_schedule_problem("cron(0 3 1 1,7 ? *)") is None
    assert aws_schedule_problem("cron(0 3 ? * MON-FRI *)") is None
    assert aws_schedule_problem("rate(5 minutes)") is None
    assert "six fields" in aws_schedule_problem("cron(0 3 * * ?)")
    assert "hours" in aws_schedule_problem("cron(0 24 * * ? *)")
    assert "singular" in aws_schedule_problem("rate(1 minutes)")
    assert unix_cron_problem("0 22 * * *") is None
    assert unix_cron_problem("30 6 * * 1-5") is None
    assert "five fields" in unix_cron_problem("0 3 * * ? *")
