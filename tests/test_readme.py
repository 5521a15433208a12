"""The README's Python example runs as written."""

import re
from pathlib import Path


def test_the_readme_example_runs():
    readme = (Path(__file__).parent.parent / "README.md").read_text()
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    exec(compile(example, "README.md", "exec"), {})
