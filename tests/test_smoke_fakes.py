"""The recording fakes themselves behave as the other tests rely on."""

import subprocess


def test_fake_records_argv_and_applies_rules(fake_tools):
    fake_tools.rule("helm", "status", exit=3, stderr="boom")
    ok = subprocess.run(["helm", "list", "-A"], capture_output=True, check=False)
    bad = subprocess.run(["helm", "status", "x"], capture_output=True, check=False)
    assert ok.returncode == 0
    assert (bad.returncode, bad.stderr) == (3, b"boom")
    assert fake_tools.argvs("helm") == [["helm", "list", "-A"], ["helm", "status", "x"]]
