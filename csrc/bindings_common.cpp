#include "bindings_common.hpp"

namespace pyimgdir {

// Paths cross the boundary as the OS sees them: bytes in the filesystem encoding, with
// undecodable bytes as surrogate escapes (what os.fsencode / os.fsdecode do), so names
// that are not valid UTF-8 round-trip exactly.
std::string fs_path(py::handle obj) {
    PyObject* bytes = nullptr;
    if (PyUnicode_Check(obj.ptr())) {
        bytes = PyUnicode_EncodeFSDefault(obj.ptr());
        if (!bytes) throw py::error_already_set();
    } else if (PyBytes_Check(obj.ptr())) {
        bytes = obj.ptr();
        Py_INCREF(bytes);
    } else {
        py::object p = py::module_::import("os").attr("fsencode")(obj);
        bytes = p.release().ptr();
    }
    std::string out(PyBytes_AS_STRING(bytes), static_cast<size_t>(PyBytes_GET_SIZE(bytes)));
    Py_DECREF(bytes);
    return out;
}

std::vector<std::string> fs_paths(const py::iterable& items) {
    std::vector<std::string> out;
    if (py::isinstance<py::sequence>(items)) out.reserve(py::len(items));
    for (py::handle h : items) out.push_back(fs_path(h));
    return out;
}

py::str fs_str(const std::string& s) {
    PyObject* u = PyUnicode_DecodeFSDefaultAndSize(s.data(), static_cast<Py_ssize_t>(s.size()));
    if (!u) throw py::error_already_set();
    return py::reinterpret_steal<py::str>(u);
}

py::list fs_list(const std::vector<std::string>& v) {
    py::list out(v.size());
    for (size_t i = 0; i < v.size(); ++i) out[i] = fs_str(v[i]);
    return out;
}

py::str reason_str(const std::string& s) { return py::bytes(s).attr("decode")("utf-8", "replace"); }

namespace {

py::object load_error_class() { return py::module_::import("pyimgdir.errors").attr("ImageLoadError"); }

}  // namespace

[[noreturn]] void raise_load_error(const std::string& path, const std::string& reason, int64_t position,
                                   int64_t file_index) {
    py::object cls = load_error_class();
    py::object exc = cls(fs_str(path), reason_str(reason), position, file_index);
    PyErr_SetObject(cls.ptr(), exc.ptr());
    throw py::error_already_set();
}

Fit parse_fit(const std::string& s) {
    if (s == "stretch") return Fit::Stretch;
    if (s == "crop") return Fit::Crop;
    if (s == "pad") return Fit::Pad;
    if (s == "pad_resize") return Fit::PadResize;
    throw std::invalid_argument("fit must be 'stretch', 'crop', 'pad' or 'pad_resize'");
}

Decoder parse_decoder(const std::string& s) {
    if (s == "tensorflow") return Decoder::TensorFlow;
    if (s == "pillow") return Decoder::Pillow;
    throw std::invalid_argument("decoder must be 'tensorflow' or 'pillow'");
}

const char* interpolation_name(Interpolation m) {
    for (const char* name : {"bilinear", "nearest", "bicubic", "area", "lanczos3", "lanczos5", "gaussian", "mitchellcubic"})
        if (parse_interpolation(name) == m) return name;
    return "bilinear";
}

const char* fit_name(Fit f) {
    return f == Fit::Crop ? "crop" : f == Fit::Pad ? "pad" : f == Fit::PadResize ? "pad_resize" : "stretch";
}

Flip parse_flip(const std::string& s) {
    if (s == "none") return Flip::None;
    if (s == "horizontal") return Flip::Horizontal;
    if (s == "vertical") return Flip::Vertical;
    if (s == "horizontal_and_vertical") return Flip::Both;
    throw std::invalid_argument("random_flip must be 'none', 'horizontal', 'vertical' or 'horizontal_and_vertical'");
}

const char* flip_name(Flip f) {
    switch (f) {
        case Flip::Horizontal: return "horizontal";
        case Flip::Vertical: return "vertical";
        case Flip::Both: return "horizontal_and_vertical";
        default: return "none";
    }
}

}  // namespace pyimgdir
