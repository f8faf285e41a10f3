"""The pre-commit hooks (`.pre-commit-hooks.yaml`) as a policy repository runs them: pre-commit
itself, in a temporary git repository, installing this checkout's kvmpmu as its hook
environment (once per session: that install needs the package index, like any pre-commit
hook's)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clihelpers import ROOT

PRE_COMMIT = str(Path(sys.executable).with_name("pre-commit"))
EXAMPLE = ROOT / "configs" / "policy-repo"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("pre-commit-home")
    return dict(os.environ, PRE_COMMIT_HOME=str(home), GIT_AUTHOR_NAME="t",
                GIT_AUTHOR_EMAIL="t@localhost", GIT_COMMITTER_NAME="t",
                GIT_COMMITTER_EMAIL="t@localhost", NO_COLOR="1")


def git_repository(path, env):
    for part in ("policies", "tests"):
        shutil.copytree(EXAMPLE / part, path / part)
    shutil.copy(EXAMPLE / "pyproject.toml", path / "pyproject.toml")
    (path / "notes.yml").write_text("owner: platform team\n")  # neither spec nor workload
    subprocess.run(["git", "init", "-q", str(path)], check=True, env=env)
    return path


def hook(repo, hook_id, env):
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=env)
    return subprocess.run([PRE_COMMIT, "try-repo", str(ROOT), hook_id, "--all-files",
                           "--verbose"], cwd=repo, env=env, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.slow
def test_the_hooks_pass_on_good_policies_and_fail_on_bad_ones(tmp_path, env):
    repo = git_repository(tmp_path / "repo", env)
    for hook_id in ("kvmpmu-validate", "kvmpmu-lint", "kvmpmu-test"):
        result = hook(repo, hook_id, env)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "Passed" in result.stdout
    (repo / "policies" / "wide.yaml").write_text("host: {cpu: cortex-a72}\n"
                                                  "filters: [{deny: 0x4009}]\n")
    result = hook(repo, "kvmpmu-lint", env)
    assert result.returncode == 1 and "Failed" in result.stdout
    assert "policies/wide.yaml:2:11: error: KP007 outside-event-space" in result.stdout
    result = hook(repo, "kvmpmu-validate", env)
    assert result.returncode == 1  # the kernel answers EINVAL: exit 4
    assert "policies/wide.yaml" in result.stdout
    (repo / "policies" / "wide.yaml").unlink()
    (repo / "tests" / "no-timing.yaml").write_text(
        (repo / "tests" / "no-timing.yaml").read_text().replace("eq: 0}", "eq: 1}"))
    result = hook(repo, "kvmpmu-test", env)
    assert result.returncode == 1
    assert "tests/no-timing.yaml (kernel 6.12): FAILED" in result.stdout


LOCAL_HOOKS = """repos:
  - repo: local
    hooks:
      - {id: kvmpmu-validate, name: kvmpmu validate, entry: kvmpmu validate --skip-unrelated,
         language: system, types_or: [yaml, json], require_serial: true}
      - {id: kvmpmu-lint, name: kvmpmu lint, entry: kvmpmu lint --skip-unrelated,
         language: system, types_or: [yaml, json]}
      - {id: kvmpmu-test, name: kvmpmu test, entry: kvmpmu test --quiet, language: system,
         types_or: [yaml, json], pass_filenames: false}
"""


def test_the_readmes_local_hooks_run_the_installed_kvmpmu(tmp_path, env):
    """The README's `repo: local` form: no URL, no hook environment, the kvmpmu on PATH."""
    repo = git_repository(tmp_path / "repo", env)
    (repo / ".pre-commit-config.yaml").write_text(LOCAL_HOOKS)
    assert LOCAL_HOOKS in (ROOT / "README.md").read_text().replace("```yaml\n", "")
    path = dict(env, PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    (repo / "policies" / "wide.yaml").write_text("host: {cpu: cortex-a72}\n"
                                                  "filters: [{deny: 0x4009}]\n")
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True, env=path)
    result = subprocess.run([PRE_COMMIT, "run", "--all-files"], cwd=repo, env=path,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "policies/wide.yaml:2:11: error: KP007 outside-event-space" in result.stdout
    assert result.stdout.count("Passed") == 1  # kvmpmu test; validate and lint fail
