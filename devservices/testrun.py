"""`make test`: ruff, mypy and pytest against real PostgreSQL and Redis.

DATABASE_URL / REDIS_URL are used when set; otherwise embedded ones are started for the run and stopped after.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from devservices.stack import PROJECT_DIR, Stack, say


def run(argv: list[str], env: dict[str, str]) -> int:
    say("$ " + " ".join(argv))
    return subprocess.run(argv, env=env, cwd=PROJECT_DIR).returncode


def main() -> int:
    run_dir = Path(tempfile.mkdtemp(prefix="test-", dir=PROJECT_DIR / ".run" if (PROJECT_DIR / ".run").is_dir()
                                    else _made(PROJECT_DIR / ".run")))
    stack = Stack(run_dir, web_port=0)
    stack.logs.mkdir(parents=True, exist_ok=True)
    try:
        stack.start_postgres()
        stack.start_redis()
        env = {**stack.child_env(), "REBILL_ENV": "test"}
        failures = 0
        failures += run([sys.executable, "-m", "ruff", "check", "."], env) != 0
        failures += run([sys.executable, "-m", "mypy"], env) != 0
        failures += run([sys.executable, "-m", "pytest", *sys.argv[1:]], env) != 0
        return 1 if failures else 0
    finally:
        stack.down()
        shutil.rmtree(run_dir, ignore_errors=True)


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
