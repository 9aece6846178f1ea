"""The README's configuration table lists every variable the code reads."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READERS = re.compile(r'env_(?:str|bool|int|optional_str|optional_int|optional_decimal|choice|list)\(\s*"([A-Z_]+)"')


def variables_read_by_the_code():
    names = set()
    for path in [
        *ROOT.glob("orchestrator/**/*.py"),
        *ROOT.glob("catalog/**/*.py"),
        *ROOT.glob("nodes/**/*.py"),
        *ROOT.glob("pools/**/*.py"),
    ]:
        names.update(READERS.findall(path.read_text()))
    return names


def test_every_setting_is_documented_with_a_default():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z_]+)` \| [^|]+ \|", readme, flags=re.MULTILINE))

    missing = variables_read_by_the_code() - documented

    assert not missing, f"README configuration table lacks: {sorted(missing)}"


def test_the_ci_script_runs_the_readmes_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"## Run the tests\s+```sh\n(.+?)\n```", readme, flags=re.DOTALL)

    assert command is not None
    assert command.group(1).strip() in ci
