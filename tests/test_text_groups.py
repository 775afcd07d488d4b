"""The text summaries of a model that repeats one upsampler: identical stage rows, findings and
notes written once, nothing lost (every failing stage named, counts as in report.json)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from conftest import run_model_cli
from hypothesis import given
from hypothesis import strategies as st

from upsampcheck.report.grouping import group_findings, group_notes, template
from upsampcheck.report.name_sets import compact_names, expand_names
from upsampcheck.report.text import by_stage, stage_rows

pytestmark = pytest.mark.xdist_group("aliasfree")  # one worker runs the 77-stage check

AA = "up:conv_transpose1d"
ALIASFREE_STAGES = expand_names(
    f"ups.{{0..3}}, blocks.{{0..3}}.{{0..2}}.acts{{1,2}}.{{0..2}}.{AA}, act_post.{AA}"
)
"""The 77 stages tests/aliasfree.py documents: 4 ConvTranspose1d and 73 anti-aliasing x2."""


@pytest.fixture(scope="module")
def aliasfree(aliasfree_run) -> dict:
    """The 77-stage BigVGAN-like vocoder, run once for the session (conftest)."""
    return aliasfree_run


@pytest.fixture(scope="module")
def two_stages(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("two") / "report"
    return run_model_cli(out, "--arch", "model_fixtures:TransposedStack", "--input-shape", "4,256")


def logical_lines(text: str) -> list[str]:
    """verdict.txt's lines with wrapped ones (continued four spaces in) joined back."""
    out: list[str] = []
    for line in text.splitlines():
        if re.match(r"^    \S", line) and out:
            out[-1] += " " + line.strip()
        else:
            out.append(line)
    return out


def named(header: str) -> list[str]:
    """The stages a finding header (``name:`` or ``N stages: <patterns>:``) stands for."""
    body = header[:-1]
    group = re.fullmatch(r"(\d+) stages: (.*)", body)
    if group is None:
        return [body]
    names = expand_names(group[2])
    assert len(names) == int(group[1]), header
    return names


def findings_in_text(text: str) -> Counter:
    """(stage, check, severity) of every finding verdict.txt states, a group once per stage."""
    said: Counter = Counter()
    stages: list[str] = []
    for line in logical_lines(text):
        finding = re.match(r"^  \[(\w+) *\] (\S+)", line)
        if finding:
            said.update((name, finding[2], finding[1].lower()) for name in stages)
        elif not line.startswith((" ", "note:", "verdict:")) and line.endswith(":"):
            stages = named(line)
    return said


def findings_in_report(report: dict) -> Counter:
    return Counter((f["stage"], f["check"], f["severity"]) for f in report["findings"])


def test_77_stage_verdict_txt_is_under_200_lines_and_lists_every_finding(aliasfree):
    text, report = aliasfree["text"], aliasfree["report"]
    assert aliasfree["code"] == 1 and report["verdict"] == "fail"
    assert len(text.splitlines()) < 200  # 606 lines before grouping
    assert findings_in_text(text) == findings_in_report(report)


def test_77_stage_names_are_all_in_report_json_and_in_the_text(aliasfree):
    report = aliasfree["report"]
    in_json = {st["name"] for st in report["stages"]}
    in_json |= {f["stage"] for f in report["findings"]} - {"output"}
    assert in_json == set(ALIASFREE_STAGES) and len(ALIASFREE_STAGES) == 77
    said = {name for name, _, _ in findings_in_text(aliasfree["text"])}
    assert said - {"output"} == set(ALIASFREE_STAGES)


def test_77_stage_rows_name_each_measured_stage_once(aliasfree):
    report = aliasfree["report"]
    count = len(logical_lines("\n".join(stage_rows(report["stages"]))))
    rows = logical_lines(aliasfree["text"])[1 : 1 + count]
    listed = []
    for row in rows:
        group = re.fullmatch(r"(\d+) stages \((.*)\): (.*)", row)
        listed += expand_names(group[3]) if group else [row.split(" (")[0]]
    assert sorted(listed) == sorted(st["name"] for st in report["stages"])
    assert len(rows) < len(report["stages"]) / 5  # 4 x8/x2 upsamplers and 3 rates of x2 filters


def test_77_stage_verdict_counts_equal_report_json(aliasfree):
    report = aliasfree["report"]
    counts = Counter(f["severity"] for f in report["findings"])
    line = aliasfree["text"].splitlines()[-1]
    stated = dict((s, int(n)) for n, s in re.findall(r"(\d+) (fail|warn|info|pass)", line))
    assert line.startswith("verdict: FAIL (") and stated == dict(counts)


def test_77_stage_stdout_is_under_200_lines_with_every_finding_counted(aliasfree):
    stdout, report = aliasfree["stdout"], aliasfree["report"]
    lines = stdout.splitlines()
    assert len(lines) < 200  # 1,467 lines before grouping, at 80 columns
    rows: Counter = Counter()
    for line in lines:
        row = re.match(r"^│ (fail|warn|info|pass) │[^│]*│ (?:(\d+) stages)?", line)
        folded = re.match(r"^│ info │[^│]*│[\s│]*│ (\d+) findings \(in", line)  # many infos
        if folded:
            rows["info"] += int(folded[1])
        elif row:
            rows[row[1]] += int(row[2] or 1)
    assert rows == Counter(f["severity"] for f in report["findings"])
    assert "verdict: FAIL (exit 1); report in" in " ".join(lines[-2:])


def test_77_stage_stdout_names_every_failing_and_warning_stage_with_its_cause(aliasfree):
    stdout, report = aliasfree["stdout"], aliasfree["report"]
    after_table = stdout.split("┘", 1)[1]
    causes = " ".join(line.rstrip() for line in after_table.splitlines())
    named_there = set()  # (stage, check)
    for check, count, patterns in re.findall(r"(\w+) \((\d+) stages: ([^()]*)\)", causes):
        names = expand_names(patterns)
        assert len(names) == int(count)
        named_there |= {(name, check) for name in names}
    for check, stage in re.findall(r"(\w+) \(([^()\s]+)\)", causes):
        named_there.add((stage, check))
    for f in report["findings"]:
        if f["severity"] in ("fail", "warn") and f["cause"]:
            assert (f["stage"], f["check"]) in named_there, f


def test_77_stage_notes_that_differ_by_stage_are_one_line(aliasfree):
    report, text = aliasfree["report"], aliasfree["text"]
    notes = [line[len("note: ") :] for line in logical_lines(text) if line.startswith("note: ")]
    assert notes == group_notes(report["notes"], ALIASFREE_STAGES)
    shapes: Counter = Counter()
    for note in notes:
        names = {name for name in ALIASFREE_STAGES if re.search(rf"{re.escape(name)}\b:", note)}
        if len(names) == 1:
            shapes[template(note, names.pop())[0]] += 1
    assert all(n < 3 for n in shapes.values()), shapes  # none left that differ by name alone
    for note in report["notes"]:
        assert note in notes or any(re.search(r"\d+ stages ", n) for n in notes)


def test_two_stage_model_text_is_unchanged_in_shape(two_stages):
    """Nothing repeats three times: one row per stage, each finding on its own line under its
    stage, the report's own message."""
    report, text = two_stages["report"], two_stages["text"]
    assert [st["name"] for st in report["stages"]] == ["decoder.1", "decoder.3"]
    expected = [
        "decoder.1 (transposed, x2, 2000 -> 4000 Hz)",
        "decoder.3 (transposed, x4, 4000 -> 16000 Hz)",
    ]
    stage = None
    for f in by_stage(report):
        if f["stage"] != stage:
            stage = f["stage"]
            expected.append(f"{stage}:")
        expected.append(f"  [{f['severity'].upper():4}] {f['check']:9} {f['message']}")
    lines = text.splitlines()
    shown = [ln for ln in lines[1:] if not ln.startswith(("         ", "note:", "verdict:"))]
    assert shown == expected
    assert all(len(entry.findings) == 1 for entry in group_findings(report["findings"]))


def test_two_stage_model_stdout_has_a_row_per_finding_named_by_its_stage(two_stages):
    rows = re.findall(r"^│ (fail|warn|info|pass) │ (\S+) +│ (\S+)", two_stages["stdout"], re.M)
    report = two_stages["report"]
    assert rows == [(f["severity"], f["check"], f["stage"]) for f in by_stage(report)]


def finding(stage: str, check: str, severity: str, message: str, level=None, freq=None) -> dict:
    return {
        "check": check, "severity": severity, "stage": stage, "message": message,
        "level_db": level, "freq_hz": freq, "cause": "", "fix": "",
    }  # fmt: skip


def test_findings_that_differ_by_stage_and_numbers_become_one_entry_with_ranges():
    dc = [10.6, 23.2, 15.2, 30.8]
    findings = [
        finding(f"b.{i}.up", "offset", "warn", f"DC under silence: {v:.1f} dB re signal", v, 0.0)
        for i, v in enumerate(dc)
    ]
    (entry,) = group_findings(findings)
    assert entry.where() == "4 stages: b.{0..3}.up"
    assert entry.message() == (
        "DC under silence: 10.6 to 30.8 dB re signal; worst 30.8 dB on b.3.up"
    )


def test_the_worst_filtering_response_is_the_lowest():
    levels = [-3.7, -4.8, -3.9]
    findings = [
        finding(f"s{i}", "filtering", "warn", f"response {v:.1f} dB at 0.9 of Nyquist", v)
        for i, v in enumerate(levels)
    ]
    (entry,) = group_findings(findings)
    assert entry.worst()["stage"] == "s1"
    assert entry.message().endswith(
        "response -4.8 to -3.7 dB at 0.9 of Nyquist; worst -4.8 dB on s1"
    )


def test_two_alike_findings_or_different_severities_stay_apart():
    two = [finding(f"s{i}", "tonal", "pass", "no tonal line above -110 dB") for i in range(2)]
    assert [len(e.findings) for e in group_findings(two)] == [1, 1]
    mixed = [
        finding(f"s{i}", "offset", s, "DC 3.0 dB") for i, s in enumerate("warn pass warn".split())
    ]
    assert [len(e.findings) for e in group_findings(mixed)] == [1, 1, 1]


def test_a_stage_name_with_digits_is_not_read_as_a_number():
    msgs = [f"offset of {v} dB entering blk.{i}.up -> line at 86.1 Hz made by blk.{i}.up"
            for i, v in enumerate((2.9, 12.4, 33.3))]  # fmt: skip
    (entry,) = group_findings(
        [finding(f"blk.{i}.up", "offset", "info", m) for i, m in enumerate(msgs)]
    )
    assert entry.message() == (
        "offset of 2.9 to 33.3 dB entering each stage -> line at 86.1 Hz made by each stage"
    )


def test_notes_that_differ_by_stage_name_are_written_once_where_the_first_was():
    names = [f"blocks.3.{r}.acts{a}.0.up" for r in range(3) for a in (1, 2)]
    notes = ["input shape inferred: 8 channels"]
    notes += [f"{n}: length ratio 0.5 taken as 0.5, output rate 44102.5 Hz" for n in names]
    notes += ["analysed output of shape (1, 262144) per probe"]
    assert group_notes(notes, names) == [
        "input shape inferred: 8 channels",
        "6 stages blocks.3.{0..2}.acts{1,2}.0.up: length ratio 0.5 taken as 0.5, output rate "
        "44102.5 Hz",
        "analysed output of shape (1, 262144) per probe",
    ]


def test_a_grid_of_names_is_one_pattern_and_expands_back():
    names = [f"blocks.{b}.{r}.acts{a}.{d}.{AA}" for b in range(3) for r in range(3)
             for a in (1, 2) for d in range(3)]  # fmt: skip
    text = compact_names(["ups.0", *names, "act_post." + AA])
    assert text == f"ups.0, blocks.{{0..2}}.{{0..2}}.acts{{1,2}}.{{0..2}}.{AA}, act_post.{AA}"
    assert expand_names(text) == ["ups.0", *names, "act_post." + AA]


def test_a_scattered_set_of_names_still_expands_to_exactly_itself():
    names = ["enc.1.up", "enc.4.up", "dec.1.up", "dec.2.up", "dec.3.up", "dec.10.up", "out"]
    text = compact_names(names)
    assert text == "enc.{1,4}.up, dec.{1..3,10}.up, out"
    assert expand_names(text) == names


TOKENS = st.sampled_from(["blocks", "up", "act", ".", ":", "_", "#", "0", "1", "2", "10", "07"])


@given(st.lists(st.lists(TOKENS, min_size=1, max_size=6).map("".join), max_size=40))
def test_compacted_names_expand_to_the_same_names_once_each(names):
    unique = list(dict.fromkeys(names))
    expanded = expand_names(compact_names(unique))
    assert sorted(expanded) == sorted(unique)
