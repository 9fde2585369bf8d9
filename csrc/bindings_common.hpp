// Shared by the binding files: paths across the boundary, running without the GIL, the
// ImageLoadError raised for a file that fails, and the option-name parsers. Each
// register_*.cpp adds one group of _core's functions and classes; bindings.cpp is the
// module. Type conversion, GIL release and error mapping only: no policy.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/crop.hpp"
#include "core/pipeline.hpp"
#include "core/resize.hpp"

namespace pyimgdir {
namespace py = pybind11;

std::string fs_path(py::handle obj);
std::vector<std::string> fs_paths(const py::iterable& items);
py::str fs_str(const std::string& s);
py::list fs_list(const std::vector<std::string>& v);

// Runs `f` with the GIL released. Unlike py::gil_scoped_release, the GIL is taken back
// outside any destructor: at interpreter exit CPython ends a daemon thread that asks for
// the GIL with pthread_exit, whose forced unwinding must not cross a noexcept destructor
// (that would abort the whole process).
template <class F>
auto without_gil(F&& f) -> decltype(f()) {
    PyThreadState* ts = PyEval_SaveThread();
    if constexpr (std::is_void_v<decltype(f())>) {
        try {
            f();
        } catch (...) {
            PyEval_RestoreThread(ts);
            throw;
        }
        PyEval_RestoreThread(ts);  // outside the try: a forced unwind passes straight up
    } else {
        std::optional<decltype(f())> result;
        try {
            result.emplace(f());
        } catch (...) {
            PyEval_RestoreThread(ts);
            throw;
        }
        PyEval_RestoreThread(ts);
        return std::move(*result);
    }
}

// Decoder and OS messages are text, but never let a stray byte turn into an exception.
py::str reason_str(const std::string& s);

// Raises pyimgdir.errors.ImageLoadError(path, reason, position, file_index).
[[noreturn]] void raise_load_error(const std::string& path, const std::string& reason, int64_t position,
                                   int64_t file_index);

Fit parse_fit(const std::string& s);
Decoder parse_decoder(const std::string& s);
Flip parse_flip(const std::string& s);
const char* interpolation_name(Interpolation m);
const char* fit_name(Fit f);
const char* flip_name(Flip f);

void register_walk(py::module_& m);
void register_decode(py::module_& m);
void register_loader(py::module_& m);

}  // namespace pyimgdir
