"""Jupyter's kernel conformance suite (jupyter_kernel_test, Debian package python3-jupyter-kernel-test) against the
rome-ts kernel. Run by test/kernelProtocol.test.ts with /usr/bin/python3, in an empty temporary directory, with
JUPYTER_DATA_DIR pointing at a kernel spec installed for the test:

    python3 -m unittest -v test/kernel_conformance.py

Every message is validated against the suite's message schemas. Tests the suite skips here, and why:
- test_pager: tslab has no pager payloads (IPython's `?` help); inspection (test_inspect) is the TypeScript way.
- test_history: the kernel keeps no history database (`supported_history_operations` is empty), as tslab.
- test_clear_output: no API in rome-ts clears an output; progress updates one output in place instead.
"""
import json
import os
import sys
import unittest

import jupyter_kernel_test
from jupyter_client.manager import start_new_kernel


class RomeTsKernelTests(jupyter_kernel_test.KernelTests):
    kernel_name = os.environ.get("ROME_TS_KERNEL_NAME", "rome-ts")

    @classmethod
    def setUpClass(cls):
        # As the suite's own setUpClass, with a start timeout for busy CI machines (the suite's default is 60 s;
        # the kernel answers kernel_info within seconds on an idle machine).
        cls.km, cls.kc = start_new_kernel(kernel_name=cls.kernel_name, startup_timeout=300)
    language_name = "typescript"
    file_extension = ".ts"

    code_hello_world = 'console.log("hello, world")'
    code_stderr = 'console.error("something went wrong")'
    # A preloaded global, completed from its declared type (model.conf -> model.config).
    completion_samples = [
        {"text": "model.conf", "matches": {"config"}},
        {"text": "romets.loadMod", "matches": {"loadModel"}},
    ]
    complete_code_samples = ["1 + 1", "const x = 1;", "function f() { return 1; }"]
    incomplete_code_samples = ["function f() {", "const a = [1, 2,", "if (true) {"]
    code_generate_error = 'throw new Error("boom")'
    code_execute_result = [
        {"code": "6 * 7", "result": "42"},
        {"code": "model.config.nLayer > 0", "result": "true"},
        {"code": "'rome' + '-ts'", "result": "'rome-ts'"},
    ]
    code_display_data = [
        {"code": "await display.vegaLite(plot.line([1, 2, 3]))", "mime": "application/vnd.vegalite.v5+json"},
        {"code": "await display.vegaLite(plot.line([1, 2, 3]))", "mime": "image/svg+xml"},
        {"code": 'display.markdown("**hi**")', "mime": "text/markdown"},
    ]
    code_inspect_sample = "model.generate"


class RecordingResult(unittest.TextTestResult):
    """Records each test's outcome by name (the kernel's own stderr interleaves with unittest's text output)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = {}

    def _set(self, test, outcome):
        name = test.id().split(".")[-1]
        # A test with subtests: any failure wins over ok, ok over skipped.
        rank = {"skipped": 0, "ok": 1, "fail": 2, "error": 3}
        if rank[outcome] >= rank.get(self.outcomes.get(name, "skipped"), 0):
            self.outcomes[name] = outcome

    def addSuccess(self, test):
        super().addSuccess(test)
        self._set(test, "ok")

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self._set(getattr(test, "test_case", test), "skipped")

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self._set(test, "fail")

    def addError(self, test, err):
        super().addError(test, err)
        self._set(getattr(test, "test_case", test), "error")

    def addSubTest(self, test, subtest, err):
        super().addSubTest(test, subtest, err)
        if err is None:
            self._set(test, "ok")
        elif issubclass(err[0], unittest.SkipTest):
            self._set(test, "skipped")
        else:
            self._set(test, "fail" if issubclass(err[0], test.failureException) else "error")


if __name__ == "__main__":
    suite = unittest.defaultTestLoader.loadTestsFromTestCase(RomeTsKernelTests)
    result = unittest.TextTestRunner(verbosity=2, resultclass=RecordingResult).run(suite)
    report = os.environ.get("ROME_TS_CONFORMANCE_REPORT")
    if report:
        with open(report, "w") as f:
            json.dump(result.outcomes, f)
    sys.exit(0 if result.wasSuccessful() else 1)
