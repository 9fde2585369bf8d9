#!/usr/bin/env bash
# Sanitizer job: builds pyimgdir._core with AddressSanitizer + UndefinedBehaviorSanitizer
# (-DPYIMGDIR_SANITIZE=ON) into a temporary directory and runs the TensorFlow-free part of
# the test suite against it. The checkout (build/, pyimgdir/_core*.so) is left untouched.
#
# Exits non-zero when a test fails or when any sanitizer report was written, by the test
# process or by any child process it started (reports go to log files, collected at the end).
#
# Usage: .ci/sanitize.sh [extra pytest args]      (KEEP=1 keeps the temporary directory)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
py="${PYTHON:-python}"
work="$(mktemp -d "${TMPDIR:-/tmp}/pyimgdir-sanitize.XXXXXX")"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT

# The TF-free test files: everything that runs without TensorFlow/Keras. Tests that need TF
# use the tf/keras fixtures (importorskip) and are deselected with -m "not tf" as well.
tests=(
    tests/test_decode.py tests/test_decode_bmp_gif.py tests/test_downscale.py
    tests/test_errors_policy.py tests/test_pipeline.py tests/test_row_skipping.py tests/test_walk.py
    tests/test_hostile_inputs.py tests/test_process_health.py tests/test_fuzz_corpus.py
    tests/test_jpeg_eighth.py tests/test_jpeg_entropy_index.py tests/test_jpeg_region_scan.py tests/test_resize.py
    tests/test_crop.py
)

# 1. A copy of the package and the tests, with the sanitized extension in place of the .so.
pkg="$work/pkg"
mkdir -p "$pkg"
cp -r "$root/pyimgdir" "$root/tests" "$root/pyproject.toml" "$pkg/"
rm -f "$pkg"/pyimgdir/_core*.so
find "$pkg" -name __pycache__ -prune -exec rm -rf {} +

# Build tools: pip's build isolation does not leave CMake or pybind11 behind after
# `pip install .`, so fetch them into this Python when they are missing.
cmake_bin="$(command -v cmake || true)"
if [ -z "$cmake_bin" ]; then
    "$py" -m pip install -q "cmake>=3.18"
    cmake_bin="$("$py" -c 'import cmake, os; print(os.path.join(cmake.CMAKE_BIN_DIR, "cmake"))')"
fi
"$py" -c "import pybind11" 2>/dev/null || "$py" -m pip install -q "pybind11>=2.12"
gen=()
if command -v ninja >/dev/null; then
    gen=(-G Ninja)
elif ! command -v make >/dev/null; then
    "$py" -m pip install -q ninja
    gen=(-G Ninja "-DCMAKE_MAKE_PROGRAM=$("$py" -c 'import ninja, os; print(os.path.join(ninja.BIN_DIR, "ninja"))')")
fi
"$cmake_bin" -S "$root" -B "$work/build" "${gen[@]}" \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DPYIMGDIR_SANITIZE=ON \
    -DPYIMGDIR_OUTPUT_DIR="$pkg/pyimgdir" \
    -DPython_EXECUTABLE="$(command -v "$py")" \
    -Dpybind11_DIR="$("$py" -m pybind11 --cmakedir)" >"$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log"; exit 1; }
"$cmake_bin" --build "$work/build" --target _core -j "$(nproc 2>/dev/null || echo 2)" >"$work/build.log" 2>&1 \
    || { cat "$work/build.log"; exit 1; }

# 2. TensorFlow and Keras hidden: a finder installed by sitecustomize (which Python imports
# at start-up from PYTHONPATH) reports them as not installed, so importorskip skips.
mkdir -p "$work/hide"
cat >"$work/hide/sitecustomize.py" <<'PY'
import sys


class _HideTensorFlow:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("tensorflow", "keras", "tf_keras"):
            raise ModuleNotFoundError(f"No module named {name!r} (hidden in the sanitizer run)", name=name)
        return None


sys.meta_path.insert(0, _HideTensorFlow())
PY

# 3. The runtime: ASan must be the first library loaded (Python itself is not instrumented).
cxx="$(grep -m1 '^CMAKE_CXX_COMPILER:' "$work/build/CMakeCache.txt" | cut -d= -f2)"
libasan="$("$cxx" -print-file-name=libasan.so)"
[ -f "$libasan" ] || { echo "libasan.so not found for $cxx" >&2; exit 1; }
libstdcxx="$("$cxx" -print-file-name=libstdc++.so.6)"
mkdir -p "$work/reports"
# libstdc++ preloaded too: ASan intercepts __cxa_throw and must find the real one at start-up
# (python itself does not link libstdc++).
export LD_PRELOAD="$libasan $libstdcxx"
# detect_leaks=0: the interpreter leaks by design at exit.
export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:log_path=$work/reports/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
export PYTHONPATH="$work/hide"
export PYIMGDIR_SANITIZED=1
export PYTHONDONTWRITEBYTECODE=1

cd "$pkg"
PKG="$pkg" "$py" - <<'EOF'
import os
import pyimgdir._core as core
assert core.__file__.startswith(os.environ["PKG"] + "/"), f"not the sanitized build: {core.__file__}"
assert "libasan" in open("/proc/self/maps").read(), "ASan runtime not loaded"
try:
    import tensorflow  # noqa: F401
    raise SystemExit("tensorflow is not hidden")
except ModuleNotFoundError:
    pass
print("sanitized module:", core.__file__)
EOF

status=0
# ASan turns mlock() into a no-op (its shadow memory cannot be locked), so the page-locking
# check cannot pass under it.
"$py" -m pytest -p no:cacheprovider -q -m "not tf" "${tests[@]}" \
    --deselect tests/test_pipeline.py::test_pin_memory_page_locks_the_batch_buffers "$@" || status=$?

# 4. Any report, from this process or a child, fails the job.
if compgen -G "$work/reports/*" >/dev/null; then
    echo "=== sanitizer reports ===" >&2
    cat "$work"/reports/* >&2
    status=1
fi
if [ "$status" -eq 0 ]; then
    echo "sanitizers: clean (${#tests[@]} test files, ASan + UBSan)"
fi
exit "$status"
