"""The pytest plugin (entry point `kvmpmu`), through pytest's own pytester."""

import shutil

from tests.clihelpers import ROOT

pytest_plugins = ["pytester"]

EXAMPLE = ROOT / "configs" / "policy-repo"
FAILING = """policy: ../policies/no-timing.yaml
vcpus:
  all:
    - write: {PMCR_EL0: 0x4}
expect:
  - {counter: cycle, eq: 0}
  - {counter: cycle, eq: 7}
"""


def policy_repo(pytester, config='[tool.kvmpmu]\ntest-paths = ["checks"]\n'):
    shutil.copytree(EXAMPLE / "policies", pytester.path / "policies")
    shutil.copytree(EXAMPLE / "tests", pytester.path / "checks")
    pytester.makepyprojecttoml(config)


def test_each_test_file_is_one_item(pytester):
    policy_repo(pytester)
    (pytester.path / "checks" / "notes.yaml").write_text("just: notes\n")  # not a test file
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["checks/late-filter.yaml::late-filter.yaml PASSED*",
                                 "checks/no-timing.yaml::no-timing.yaml PASSED*",
                                 "checks/tenant-isolation.yaml::tenant-isolation.yaml PASSED*"])


def test_a_failure_shows_the_expectation_table(pytester):
    policy_repo(pytester)
    (pytester.path / "checks" / "broken.yaml").write_text(FAILING)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines([
        "*checks/broken.yaml (policy checks/../policies/no-timing.yaml, kernel latest)*",
        "*location*expectation*actual*result*",
        "*checks/broken.yaml:6:5*counter=cycle eq=0*0*pass*",
        "*checks/broken.yaml:7:5*counter=cycle eq=7*0*FAIL*"])


def test_the_configurations_kernel_and_a_files_kernels(pytester):
    policy_repo(pytester, '[tool.kvmpmu]\ntest-paths = ["checks"]\nkernel = "5.10"\n')
    result = pytester.runpytest("-v", "-p", "no:cacheprovider")
    # late-filter.yaml names 6.1, 6.12 and latest: the plugin runs it there, not on 5.10
    result.assert_outcomes(passed=3)


def test_nothing_is_collected_without_test_paths(pytester):
    policy_repo(pytester, '[tool.kvmpmu]\nstrict = true\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes()
    assert result.ret == 5  # no tests ran


def test_a_bad_configuration_is_a_usage_error(pytester):
    policy_repo(pytester, '[tool.kvmpmu]\ntest-path = ["checks"]\n')
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == 4  # pytest's usage error
    result.stderr.fnmatch_lines(["*pyproject.toml:2:1: error: tool.kvmpmu: unknown key "
                                 "'test-path'*"])


def test_the_plugin_is_inactive_in_this_repository(pytestconfig):
    import kvmpmu_pytest
    from kvmpmu.spec import filterspec

    assert pytestconfig.pluginmanager.has_plugin("kvmpmu")
    assert pytestconfig.stash.get(kvmpmu_pytest._PATHS, None) is None
    # pytest rewrites the assertions of an entry-point plugin's package: kvmpmu's stay as
    # they are (a rewritten module imports `builtins` as `@py_builtins`)
    assert "@py_builtins" not in vars(filterspec)
