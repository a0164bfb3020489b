"""`make mutation`: mutmut over the money- and access-critical modules, each area against its own tests.

    python -m devservices.mutation                 # every area of mutation.toml
    python -m devservices.mutation plans access    # only these areas
    python -m devservices.mutation --fresh plans   # forget earlier results of these areas first
    python -m devservices.mutation --report        # print the scores of the last runs, run nothing

Each area runs in its own work directory `.mutation/<area>/` (git-ignored): links to the tree plus a
pyproject.toml carrying that area's `[tool.mutmut]`; mutmut copies it into `.mutation/<area>/mutants/` and keeps
its results there, so a second run only tests mutants whose function changed. mutmut runs one short pytest
session per mutant; instead of building the test database and the two test agencies each time, this builds
them once into a template database and every session clones it (tests/conftest.py, REBILL_MUTATION_DB_TEMPLATE).

mutmut runs through devservices/mutmut_run.py, so that functions under decorators which only wrap the call
(`@transaction.atomic`, the access checks) are mutated too.

It prints, per module, killed / total and the score over non-equivalent mutants, and lists the survivors.
Equivalent mutants are named, with a one-line reason, in mutation-allow.md. Not part of `make test` or CI.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AREAS_FILE = ROOT / "mutation.toml"
ALLOW_FILE = ROOT / "mutation-allow.md"
WORK = ROOT / ".mutation"
SKIP = {".git", ".venv", ".run", ".mutation", "mutants", "test-artifacts", ".mypy_cache", ".ruff_cache"}
# What mutmut needs to import and run the project from its copy: every top-level package (found, so a new app is
# never left out) and the data directories. The tests are linked in separately; the benchmarks are not needed.
SOURCE_ENTRIES = sorted(path.name for path in ROOT.iterdir()
                        if (path / "__init__.py").is_file() and path.name not in {"tests", "bench"}) + [
    "templates", "static", "manage.py", "README.md"]
KILLED = {"killed", "timeout", "caught by type check", "segfault"}
GOAL = 90.0


@dataclass
class Area:
    name: str
    mutate: list[str]
    tests: list[str]


@dataclass
class ModuleScore:
    module: str
    killed: int = 0
    equivalent: int = 0
    survivors: list[tuple[str, str]] = field(default_factory=list)  # (mutant, status)
    total: int = 0
    mutants: set[str] = field(default_factory=set)
    killed_but_allowed: list[str] = field(default_factory=list)

    @property
    def dotted(self) -> str:
        return self.module.removesuffix(".py").replace("/", ".") + "."

    @property
    def score(self) -> float:
        counted = self.total - self.equivalent
        return 100.0 if counted == 0 else 100.0 * self.killed / counted


def areas_load() -> dict[str, Area]:
    data = tomllib.loads(AREAS_FILE.read_text())
    return {name: Area(name=name, mutate=list(spec["mutate"]), tests=list(spec["tests"]))
            for name, spec in data["areas"].items()}


def allowed_mutants() -> dict[str, str]:
    """`mutant name` → reason, from the lines of mutation-allow.md that name one."""
    allowed: dict[str, str] = {}
    if ALLOW_FILE.exists():
        for line in ALLOW_FILE.read_text().splitlines():
            match = re.search(r"`([\w.]+__mutmut_\d+)`\s*[:—-]*\s*(.*)", line)
            if match:
                allowed[match.group(1)] = match.group(2).strip()
    return allowed


def _pyproject_for(area: Area) -> str:
    base = (ROOT / "pyproject.toml").read_text()
    if "[tool.mutmut]" in base:
        raise SystemExit("pyproject.toml must not carry [tool.mutmut]: mutation.toml says what each area runs")
    return base + "\n[tool.mutmut]\n" + "\n".join([
        f"source_paths = {json.dumps(SOURCE_ENTRIES)}",
        f"only_mutate = {json.dumps(area.mutate)}",
        f"pytest_add_cli_args_test_selection = {json.dumps(area.tests)}",
        # Test ids with parameters and the browser tests' markers are ours; no plugin reorders tests.
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-m", "not browser"]',
        "use_git_change_detection = false",
    ]) + "\n"


def _is_mutated(path: str, area: Area) -> bool:
    return path.endswith(".py") and any(fnmatch.fnmatch(path, pattern) for pattern in area.mutate)


def work_dir_prepare(area: Area, *, fresh: bool) -> Path:
    for test_path in area.tests:
        if not (ROOT / test_path).exists():
            raise SystemExit(f"mutation.toml: area {area.name} names missing tests {test_path}")
    work = WORK / area.name
    if fresh and work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    for entry in [*SOURCE_ENTRIES, "tests"]:
        link = work / entry
        if not link.is_symlink():
            link.symlink_to(ROOT / entry)
    (work / "pyproject.toml").write_text(_pyproject_for(area))
    # mutmut copies a source file into mutants/ only once: refresh every file it does not mutate, so the
    # copy never runs yesterday's code around today's mutants.
    mutants = work / "mutants"
    if mutants.exists():
        for entry in SOURCE_ENTRIES:
            source = ROOT / entry
            files = [source] if source.is_file() else [p for p in source.rglob("*") if p.is_file()]
            for path in files:
                relative = path.relative_to(ROOT).as_posix()
                if "__pycache__" in relative or _is_mutated(relative, area):
                    continue
                target = mutants / relative
                if not target.exists() or target.read_bytes() != path.read_bytes():
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(path, target)
    return work


def _env(template: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/rebill")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:6379/1")
    env["DJANGO_SETTINGS_MODULE"] = "rebill.settings"
    env["REBILL_MUTATION_DB_TEMPLATE"] = template
    env["REBILL_CACHE_PREFIX"] = env["CELERY_QUEUE"] = f"mutation{os.getpid()}"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def template_build(template: str) -> None:
    code = ("import django; django.setup()\n"
            "from tests.conftest import mutation_template_build\n"
            f"mutation_template_build({template!r})\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(template), check=True)


def template_drop(template: str) -> None:
    """Drop the template, and the copies of it that sessions mutmut killed (a timeout) left behind: a copy is named
    after its session's pid (tests/conftest.py), so only those of processes no longer alive are dropped."""
    code = ("import django; django.setup()\n"
            "from tests.conftest import _admin_cursor_execute, _leftover_mutant_databases\n"
            f"_admin_cursor_execute('DROP DATABASE IF EXISTS \"{template}\"')\n"
            "for name in _leftover_mutant_databases():\n"
            "    _admin_cursor_execute(f'DROP DATABASE IF EXISTS \"{name}\"')\n")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=_env(template), check=False)


def _mutmut_run(area: Area, work: Path, *, template: str, jobs: int, mutants: list[str]) -> int:
    command = [sys.executable, "-m", "devservices.mutmut_run", "run", "--max-children", str(jobs), *mutants]
    log = work / "mutmut.log"
    with open(log, "ab") as out:  # mutmut's spinner is for a terminal; keep its whole output in the log
        returncode = subprocess.run(command, cwd=work, env=_env(template), stdout=out, stderr=subprocess.STDOUT,
                                    check=False).returncode
    lines = log.read_text(errors="replace").replace("\r", "\n").splitlines()
    print("\n".join(line for line in lines[-40:] if "mutations/second" in line or returncode) or "", flush=True)
    return returncode


def area_run(area: Area, *, template: str, jobs: int) -> int:
    work = work_dir_prepare(area, fresh=False)
    (work / "mutmut.log").unlink(missing_ok=True)
    print(f"\n=== {area.name}: mutating {', '.join(area.mutate)} against {' '.join(area.tests)}", flush=True)
    # mutmut lets an earlier result stand unless the mutated function changed; survivors are what new tests are
    # written for, so the last run's survivors are tested again first (names that no longer exist are skipped).
    survivors = [mutant for score in area_scores(area, allowed_mutants()) for mutant, status in score.survivors
                 if status != "not checked"]
    if survivors:
        print(f"testing again the {len(survivors)} survivors of the last run", flush=True)
        _mutmut_run(area, work, template=template, jobs=jobs, mutants=survivors)
    return _mutmut_run(area, work, template=template, jobs=jobs, mutants=[])


def area_scores(area: Area, allowed: dict[str, str]) -> list[ModuleScore]:
    from mutmut.stats import status_by_exit_code

    scores = []
    mutants = WORK / area.name / "mutants"
    for meta in sorted(mutants.rglob("*.py.meta")) if mutants.exists() else []:
        module = meta.relative_to(mutants).as_posix().removesuffix(".meta")
        if not _is_mutated(module, area):
            continue
        score = ModuleScore(module=module)
        for mutant, exit_code in sorted(json.loads(meta.read_text())["exit_code_by_key"].items(),
                                        key=lambda item: _natural(item[0])):
            score.total += 1
            score.mutants.add(mutant)
            status = status_by_exit_code[exit_code]
            if status in KILLED:
                score.killed += 1
                if mutant in allowed:
                    score.killed_but_allowed.append(mutant)
            elif mutant in allowed:
                score.equivalent += 1
            else:
                score.survivors.append((mutant, status))
        scores.append(score)
    return scores


def _natural(name: str) -> tuple[str, int]:
    head, _, number = name.rpartition("__mutmut_")
    return head, int(number) if number.isdigit() else 0


def mutant_diff(area: Area, mutant: str) -> str:
    result = subprocess.run([sys.executable, "-m", "mutmut", "show", mutant], cwd=WORK / area.name,
                            capture_output=True, text=True, check=False)
    changed = [line for line in result.stdout.splitlines()
               if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    return " | ".join(line.strip() for line in changed)[:200]


def report(areas: list[Area], *, diffs: bool) -> bool:
    allowed = allowed_mutants()
    all_ok = True
    print("\nmodule                               killed  equiv  total  score")
    rows = [(area, score) for area in areas for score in area_scores(area, allowed)]
    for area in areas:
        if not any(row_area is area for row_area, _ in rows) or all(s.total == 0 for a, s in rows if a is area):
            all_ok = False
            print(f"{', '.join(area.mutate):36} no results: area {area.name} has not run (or no test reached it)")
    rows = [(area, score) for area, score in rows if score.total]
    for _area, score in rows:
        ok = score.score >= GOAL
        all_ok &= ok
        print(f"{score.module:36} {score.killed:6} {score.equivalent:6} {score.total:6} {score.score:6.1f}%"
              f"{'' if ok else '  < goal'}")
    for area, score in rows:
        if score.survivors:
            print(f"\nsurvivors in {score.module} (a test that kills each, or a reason in mutation-allow.md):")
            for mutant, status in score.survivors:
                print(f"  {mutant}  [{status}]" + (f"  {mutant_diff(area, mutant)}" if diffs else ""))
    # An allow-list line is a claim about one mutant: once the function changes, mutmut numbers its mutants anew and
    # the line may name a mutant that is gone, or one a test now kills.
    for _area, score in rows:
        gone = sorted((name for name in allowed if name.startswith(score.dotted) and name not in score.mutants),
                      key=_natural)
        for names, why in ((gone, "name no mutant of it"), (score.killed_but_allowed, "name mutants a test kills")):
            if names:
                print(f"\nmutation-allow.md lines for {score.module} that {why} (drop or renumber them):")
                print("".join(f"  {name}\n" for name in names), end="")
    print(f"\ngoal: >= {GOAL:.0f}% of non-equivalent mutants killed in every module: {'met' if all_ok else 'NOT met'}")
    return all_ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("areas", nargs="*", help="areas of mutation.toml (default: all)")
    parser.add_argument("--fresh", action="store_true", help="forget these areas' earlier results first")
    parser.add_argument("--report", action="store_true", help="only print the scores of earlier runs")
    parser.add_argument("--no-diffs", action="store_true", help="list survivors without their changed line")
    parser.add_argument("--jobs", type=int, default=int(os.environ.get("MUTATION_JOBS", "1")),
                        help="mutants tested at once (default 1, MUTATION_JOBS): the machine is shared")
    args = parser.parse_args()
    known = areas_load()
    unknown = [name for name in args.areas if name not in known]
    if unknown:
        raise SystemExit(f"unknown areas {unknown}; mutation.toml has {sorted(known)}")
    chosen = [known[name] for name in args.areas] if args.areas else list(known.values())
    if not args.report:
        if args.fresh:
            for area in chosen:
                shutil.rmtree(WORK / area.name, ignore_errors=True)
        template = f"test_rebill_mutation_{os.getpid()}"
        template_build(template)
        try:
            for area in chosen:
                if area_run(area, template=template, jobs=args.jobs) != 0:
                    print(f"mutmut failed in area {area.name}", file=sys.stderr)
        finally:
            template_drop(template)
    report(chosen, diffs=not args.no_diffs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
