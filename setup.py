"""Builds pyimgdir's compiled core (pyimgdir._core) with CMake."""

import os
import subprocess
import sys
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = Path(__file__).resolve().parent


class CMakeExtension(Extension):
    def __init__(self, name: str) -> None:
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext: Extension) -> None:
        import pybind11

        out_file = Path(self.get_ext_fullpath(ext.name)).resolve()
        out_dir = out_file.parent
        build_dir = Path(self.build_temp).resolve() / ext.name
        build_dir.mkdir(parents=True, exist_ok=True)
        cfg = os.environ.get("PYIMGDIR_BUILD_TYPE", "Release")
        args = [
            f"-DCMAKE_BUILD_TYPE={cfg}",
            f"-DPYIMGDIR_OUTPUT_DIR={out_dir}",
            f"-DPython_EXECUTABLE={sys.executable}",
            f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
        ]
        if os.environ.get("PYIMGDIR_NATIVE") == "1":
            args.append("-DPYIMGDIR_NATIVE=ON")
        if os.environ.get("PYIMGDIR_SANITIZE") == "1":
            args.append("-DPYIMGDIR_SANITIZE=ON")
        subprocess.run(["cmake", "-S", str(ROOT), "-B", str(build_dir), *args], check=True)
        jobs = str(os.cpu_count() or 2)
        subprocess.run(
            ["cmake", "--build", str(build_dir), "--target", "_core", "-j", jobs], check=True
        )
        built = list(out_dir.glob("_core*.so"))
        if not built:
            raise RuntimeError(f"CMake did not produce _core in {out_dir}")


setup(ext_modules=[CMakeExtension("pyimgdir._core")], cmdclass={"build_ext": CMakeBuild})
