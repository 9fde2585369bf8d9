// pyimgdir._core: type conversion, GIL release and error mapping around csrc/core. No policy.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <optional>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/decode.hpp"
#include "core/decode_jpeg_eighth.hpp"
#include "core/jpeg_entropy.hpp"
#include "core/pipeline.hpp"
#include "core/resize.hpp"
#include "core/walk.hpp"

namespace py = pybind11;
using namespace pyimgdir;

namespace {

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

// Decodes without the GIL into a per-thread pixel buffer kept between calls (a fresh one per
// call costs a zero-fill and page faults: for a 12-megapixel photo, more than the copy out),
// given back when over 64 MiB. Returns an (H, W, C) copy (of just the region after a region
// decode) and whether the fast 1/8 or 1/4 JPEG path decoded it.
std::pair<py::array_t<uint8_t>, bool> decode_to_array(std::string_view data, const DecodeOptions& o) {
    thread_local Image img;
    {
        py::gil_scoped_release nogil;
        decode_image(reinterpret_cast<const uint8_t*>(data.data()), data.size(), o, img);
    }
    const int w = img.region ? img.region_w : img.width;
    py::array_t<uint8_t> out({img.height, w, img.channels});
    const size_t row = static_cast<size_t>(w) * img.channels, stride = static_cast<size_t>(img.width) * img.channels;
    for (int y = 0; y < img.height; ++y)
        std::memcpy(out.mutable_data() + y * row, img.data() + y * stride + static_cast<size_t>(img.region_x) * img.channels,
                    row);
    const bool dc = img.from_dc_terms;
    if (img.pixels.capacity() > (size_t(64) << 20)) std::vector<uint8_t>().swap(img.pixels);
    return {std::move(out), dc};
}

// Decoder and OS messages are text, but never let a stray byte turn into an exception.
py::str reason_str(const std::string& s) { return py::bytes(s).attr("decode")("utf-8", "replace"); }

py::object load_error_class() { return py::module_::import("pyimgdir.errors").attr("ImageLoadError"); }

[[noreturn]] void raise_load_error(const std::string& path, const std::string& reason, int64_t position,
                                   int64_t file_index) {
    py::object cls = load_error_class();
    py::object exc = cls(fs_str(path), reason_str(reason), position, file_index);
    PyErr_SetObject(cls.ptr(), exc.ptr());
    throw py::error_already_set();
}

// A numpy view of `count` samples of a pooled buffer. The capsule keeps the buffer (and so
// the memory) alive for as long as the array or any view of it lives.
py::array batch_view(const std::shared_ptr<Buffer>& buf, int count, const LoaderConfig& cfg) {
    auto* keep = new std::shared_ptr<Buffer>(buf);
    py::capsule owner(keep, [](void* p) { delete static_cast<std::shared_ptr<Buffer>*>(p); });
    std::vector<py::ssize_t> shape{count};
    if (cfg.channels_first) {
        shape.insert(shape.end(), {cfg.channels, cfg.height, cfg.width});
    } else {
        shape.insert(shape.end(), {cfg.height, cfg.width, cfg.channels});
    }
    if (cfg.output == OutputType::Float32)
        return py::array_t<float>(shape, reinterpret_cast<float*>(buf->data), owner);
    return py::array_t<uint8_t>(shape, buf->data, owner);
}

// Fed iterators keep each fed object's buffer (a Py_buffer, so no copy) until the core hands
// it back; it is released here, on a Python thread holding the GIL, never by a worker.
py::list release_fed(EpochIterator& it) {
    py::list positions;
    for (auto& [pos, owner] : it.take_released()) {
        auto* view = static_cast<Py_buffer*>(owner);
        PyBuffer_Release(view);
        delete view;
        positions.append(pos);
    }
    return positions;
}

struct CloseAndRelease {
    void operator()(EpochIterator* it) const {  // runs with the GIL held (object dealloc)
        without_gil([&] { it->close(); });
        release_fed(*it);
        delete it;
    }
};
using IteratorHolder = std::unique_ptr<EpochIterator, CloseAndRelease>;

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

void check_range(const std::array<double, 2>& r, const char* what) {
    if (!(r[0] > 0 && r[0] <= r[1] && std::isfinite(r[1])))
        throw std::invalid_argument(std::string(what) + " must be (min, max) with 0 < min <= max");
}

void check_config(const LoaderConfig& c) {
    if (c.height < 1 || c.width < 1) throw std::invalid_argument("image_size must be positive");
    if (c.channels != 1 && c.channels != 3 && c.channels != 4)
        throw std::invalid_argument("channels must be 1, 3 or 4");
    check_range(c.crop_scale, "crop_scale");
    check_range(c.crop_ratio, "crop_ratio");
}

// Augmentations as a dict of equal-length arrays: y, x, height, width (the crop box),
// flip_horizontal, flip_vertical, and image_height, image_width when known.
template <class Get>
py::dict augments_dict(size_t n, Get get, bool with_size) {
    py::array_t<int32_t> y(n), x(n), h(n), w(n), ih(n), iw(n);
    py::array_t<bool> fh(n), fv(n);
    for (size_t i = 0; i < n; ++i) {
        int H = 0, W = 0;
        const Augment a = get(i, H, W);
        y.mutable_at(i) = a.y;
        x.mutable_at(i) = a.x;
        h.mutable_at(i) = a.h;
        w.mutable_at(i) = a.w;
        fh.mutable_at(i) = a.flip_h;
        fv.mutable_at(i) = a.flip_v;
        ih.mutable_at(i) = H;
        iw.mutable_at(i) = W;
    }
    py::dict d;
    d["y"] = y;
    d["x"] = x;
    d["height"] = h;
    d["width"] = w;
    d["flip_horizontal"] = fh;
    d["flip_vertical"] = fv;
    if (with_size) {
        d["image_height"] = ih;
        d["image_width"] = iw;
    }
    return d;
}

py::array new_sample(const LoaderConfig& cfg) {
    std::vector<py::ssize_t> shape = cfg.channels_first
                                         ? std::vector<py::ssize_t>{cfg.channels, cfg.height, cfg.width}
                                         : std::vector<py::ssize_t>{cfg.height, cfg.width, cfg.channels};
    if (cfg.output == OutputType::Float32) return py::array_t<float>(shape);
    return py::array_t<uint8_t>(shape);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
    m.doc() = "pyimgdir's compiled core (private): walk, decode, resize, batch pipeline.";
    py::register_exception<DecodeError>(m, "DecodeError", PyExc_ValueError);

    m.def(
        "walk",
        [](const py::iterable& tops_in, const py::iterable& prefixes_in, bool follow_links,
           const std::vector<std::string>& extensions, int num_threads, const py::object& progress) {
            const std::vector<std::string> tops = fs_paths(tops_in), prefixes = fs_paths(prefixes_in);
            if (tops.size() != prefixes.size()) throw std::invalid_argument("tops and prefixes differ in length");
            WalkOptions o;
            o.follow_links = follow_links;
            o.extensions = extensions;
            o.num_threads = num_threads;
            WalkResult r;
            if (progress.is_none()) {
                py::gil_scoped_release nogil;
                r = walk(tops, prefixes, o);
            } else {
                // The walk runs on its own thread; this one reports progress every 100 ms.
                WalkProgress counters;
                std::exception_ptr error;
                std::mutex mu;
                std::condition_variable cv;
                bool done = false;
                std::thread worker([&] {
                    try {
                        r = walk(tops, prefixes, o, &counters);
                    } catch (...) {
                        error = std::current_exception();
                    }
                    std::lock_guard<std::mutex> lk(mu);
                    done = true;
                    cv.notify_all();
                });
                for (;;) {
                    bool finished;
                    finished = without_gil([&] {
                        std::unique_lock<std::mutex> lk(mu);
                        return cv.wait_for(lk, std::chrono::milliseconds(100), [&] { return done; });
                    });
                    if (finished) break;
                    try {
                        progress(counters.directories.load(), counters.files.load());
                    } catch (...) {
                        py::gil_scoped_release nogil;
                        worker.join();
                        throw;
                    }
                }
                worker.join();
                if (error) std::rethrow_exception(error);
            }
            py::list files(r.files.size());
            for (size_t i = 0; i < r.files.size(); ++i) files[i] = fs_list(r.files[i]);
            return py::make_tuple(files, fs_list(r.unreadable_directories), r.directories_listed);
        },
        py::arg("tops"), py::arg("prefixes"), py::arg("follow_links"), py::arg("extensions"),
        py::arg("num_threads") = 0, py::arg("progress") = py::none());

    m.def("pinning_backend", &pinning_backend);

    m.def("sniff_format", [](py::bytes data) {
        std::string_view v = data;
        return std::string(format_name(sniff_format(reinterpret_cast<const uint8_t*>(v.data()), v.size())));
    });

    m.def(
        "decode",
        [](py::bytes data, int channels, int64_t max_pixels, const std::string& decoder) {
            std::string_view v = data;
            DecodeOptions o;
            o.channels = channels;
            o.max_pixels = max_pixels;
            o.accurate_dct = o.pillow = parse_decoder(decoder) == Decoder::Pillow;
            return decode_to_array(v, o).first;
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("max_pixels") = int64_t(1) << 28,
        py::arg("decoder") = "tensorflow");

    m.def("jpeg_checkpoint_stats", [] {
        const JpegCheckpointStats st = jpeg_checkpoint_stats();
        return py::dict(py::arg("scans") = st.scans, py::arg("bytes") = st.bytes, py::arg("budget") = st.budget,
                        py::arg("rewrites") = st.rewrites);
    });

    m.def(
        "decode_jpeg_scaled",
        [](py::bytes data, int channels, int scale, bool fast_eighth, bool fast_quarter,
           std::optional<std::array<int, 4>> region, bool region_scan) {
            if (scale != 1 && scale != 2 && scale != 4 && scale != 8)
                throw std::invalid_argument("scale must be 1, 2, 4 or 8");
            std::string_view v = data;
            DecodeOptions o;
            o.channels = channels;
            o.jpeg_fast_eighth = fast_eighth;
            o.jpeg_fast_quarter = fast_quarter;
            o.jpeg_region_scan = region_scan;
            o.choose_jpeg_scale = [](const void* ctx, int, int) { return *static_cast<const int*>(ctx); };
            o.scale_ctx = &scale;
            DecodeRegion r;
            if (region) {
                r.y = (*region)[0];
                r.x = (*region)[1];
                r.h = (*region)[2];
                r.w = (*region)[3];
                r.scale = scale;
                o.choose_region = [](const void* ctx, int, int, DecodeRegion& out) {
                    out = *static_cast<const DecodeRegion*>(ctx);
                    return true;
                };
                o.region_ctx = &r;
            }
            auto [out, dc] = decode_to_array(v, o);
            return py::make_tuple(out, dc);
        },
        py::arg("data"), py::arg("channels") = 3, py::arg("scale") = 8, py::arg("fast_eighth") = true,
        py::arg("fast_quarter") = false, py::arg("region") = py::none(), py::arg("region_scan") = true);

    m.def(
        "resize",
        [](py::array_t<uint8_t, py::array::c_style | py::array::forcecast> img, int height, int width,
           const std::string& method, bool flip_horizontal, bool flip_vertical) -> py::array {
            if (img.ndim() != 3) throw std::invalid_argument("expected an HxWxC uint8 array");
            if (height < 1 || width < 1) throw std::invalid_argument("size must be positive");
            const int h = static_cast<int>(img.shape(0)), w = static_cast<int>(img.shape(1)),
                      c = static_cast<int>(img.shape(2));
            const Interpolation m = parse_interpolation(method);
            const uint8_t* src = img.data();
            const Mirror mirror{flip_horizontal, flip_vertical};
            if ((mirror.h || mirror.v) && m != Interpolation::Bilinear)
                throw std::invalid_argument("flips are fused into the bilinear resize only");
            if (mirror.h || mirror.v) {
                py::array_t<float> out({height, width, c});
                float* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                resize_bilinear_hwc(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                                    static_cast<size_t>(width) * c, mirror);
                return std::move(out);
            }
            if (m == Interpolation::Nearest) {
                py::array_t<uint8_t> out({height, width, c});
                uint8_t* dst = out.mutable_data();
                py::gil_scoped_release nogil;
                resize_nearest_u8(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                                  static_cast<size_t>(width) * c);
                return std::move(out);
            }
            py::array_t<float> out({height, width, c});
            float* dst = out.mutable_data();
            py::gil_scoped_release nogil;
            resize_to_float(src, h, w, c, static_cast<size_t>(w) * c, dst, height, width,
                            static_cast<size_t>(width) * c, m);
            return std::move(out);
        },
        py::arg("image"), py::arg("height"), py::arg("width"), py::arg("method") = "bilinear",
        py::arg("flip_horizontal") = false, py::arg("flip_vertical") = false);

    py::class_<EpochIterator, IteratorHolder>(m, "EpochIterator")
        .def("next",
             [](EpochIterator& it, const LoaderConfig& cfg) -> py::object {
                 for (;;) {
                     Batch b;
                     EpochIterator::Status st;
                     try {
                         st = without_gil([&] { return it.next(b, 100); });
                     } catch (const BatchFailure& f) {
                         raise_load_error(f.failure.path, f.failure.reason, f.failure.position,
                                          f.failure.file_index);
                     }
                     if (st == EpochIterator::Status::End) return py::none();
                     if (st == EpochIterator::Status::Ready) {
                         py::list failures;
                         for (const auto& f : b.failures)
                             failures.append(py::make_tuple(f.position, f.file_index, fs_str(f.path),
                                                            reason_str(f.reason)));
                         return py::make_tuple(batch_view(b.buffer, b.count, cfg), b.first_position, failures);
                     }
                     // Timed out: let Ctrl-C and other signals through, then keep waiting.
                     if (PyErr_CheckSignals() != 0) throw py::error_already_set();
                 }
             })
        .def("close",
             [](EpochIterator& it) {
                 without_gil([&] { it.close(); });
                 release_fed(it);
             })
        .def(
            "feed",
            [](EpochIterator& it, int64_t position, const py::object& data) {
                auto* view = new Py_buffer;
                if (PyObject_GetBuffer(data.ptr(), view, PyBUF_SIMPLE) != 0) {
                    delete view;
                    throw py::error_already_set();
                }
                bool taken = false;
                try {
                    taken = it.feed(position, static_cast<const uint8_t*>(view->buf),
                                    static_cast<size_t>(view->len), view);
                } catch (...) {
                    PyBuffer_Release(view);
                    delete view;
                    throw;
                }
                if (!taken) {
                    PyBuffer_Release(view);
                    delete view;
                }
                return taken;
            },
            py::arg("position"), py::arg("data"))
        .def("feed_failure", &EpochIterator::feed_failure, py::arg("position"), py::arg("reason"))
        .def("release_fed", &release_fed)
        .def_property_readonly("num_batches", &EpochIterator::num_batches);

    // Every field, read-write, under the name LoadSpec.core_config() sets; enums as strings.
    py::class_<LoaderConfig>(m, "LoaderConfig")
        .def(py::init<>())
        .def_readwrite("height", &LoaderConfig::height)
        .def_readwrite("width", &LoaderConfig::width)
        .def_readwrite("channels", &LoaderConfig::channels)
        .def_property(
            "interpolation", [](const LoaderConfig& c) { return std::string(interpolation_name(c.interpolation)); },
            [](LoaderConfig& c, const std::string& v) { c.interpolation = parse_interpolation(v); })
        .def_property(
            "fit", [](const LoaderConfig& c) { return std::string(fit_name(c.fit)); },
            [](LoaderConfig& c, const std::string& v) { c.fit = parse_fit(v); })
        .def_readwrite("channels_first", &LoaderConfig::channels_first)
        .def_property(
            "dtype", [](const LoaderConfig& c) { return c.output == OutputType::Float32 ? "float32" : "uint8"; },
            [](LoaderConfig& c, const std::string& v) {
                if (v == "float32")
                    c.output = OutputType::Float32;
                else if (v == "uint8")
                    c.output = OutputType::UInt8;
                else
                    throw std::invalid_argument("dtype must be 'float32' or 'uint8'");
            })
        .def_readwrite("num_threads", &LoaderConfig::num_threads)
        .def_readwrite("prefetch", &LoaderConfig::prefetch)
        .def_readwrite("max_pixels", &LoaderConfig::max_pixels)
        .def_readwrite("lock_memory", &LoaderConfig::lock_memory)
        .def_readwrite("skip_errors", &LoaderConfig::skip_errors)
        .def_readwrite("jpeg_downscale", &LoaderConfig::jpeg_downscale)
        .def_property(
            "decoder", [](const LoaderConfig& c) { return c.decoder == Decoder::Pillow ? "pillow" : "tensorflow"; },
            [](LoaderConfig& c, const std::string& v) { c.decoder = parse_decoder(v); })
        .def_readwrite("random_crop", &LoaderConfig::random_crop)
        .def_readwrite("crop_scale", &LoaderConfig::crop_scale)
        .def_readwrite("crop_ratio", &LoaderConfig::crop_ratio)
        .def_property(
            "random_flip", [](const LoaderConfig& c) { return std::string(flip_name(c.random_flip)); },
            [](LoaderConfig& c, const std::string& v) { c.random_flip = parse_flip(v); })
        .def_readwrite("augment_seed", &LoaderConfig::augment_seed);

    py::class_<FileChecker>(m, "FileChecker")
        .def(py::init([](const py::iterable& paths, int channels, int64_t max_pixels, int num_threads,
                         const std::string& decoder) {
                 return std::make_unique<FileChecker>(fs_paths(paths), channels, max_pixels, num_threads,
                                                      parse_decoder(decoder));
             }),
             py::arg("paths"), py::arg("channels") = 3, py::arg("max_pixels") = int64_t(1) << 28,
             py::arg("num_threads") = 0, py::arg("decoder") = "tensorflow")
        .def("wait", [](FileChecker& c, int timeout_ms) { return without_gil([&] { return c.wait(timeout_ms); }); })
        .def("cancel", &FileChecker::cancel)
        .def_property_readonly("done", &FileChecker::done)
        .def_property_readonly("total", &FileChecker::total)
        .def("failures", [](FileChecker& c) {
            py::list out;
            for (const auto& f : c.failures())
                out.append(py::make_tuple(f.file_index, fs_str(f.path),
                                          reason_str(f.reason)));
            return out;
        });

    py::class_<Loader>(m, "Loader")
        .def(py::init([](const py::iterable& paths, const LoaderConfig& cfg) {
                 check_config(cfg);
                 return std::make_unique<Loader>(fs_paths(paths), cfg);
             }),
             py::arg("paths"), py::arg("config"))
        // Shorthand for tests and benchmarks: the size, then any LoaderConfig field by name.
        .def(py::init([](const py::iterable& paths, int height, int width, int channels, const py::kwargs& fields) {
                 py::object cfg = py::cast(LoaderConfig());
                 cfg.attr("height") = height;
                 cfg.attr("width") = width;
                 cfg.attr("channels") = channels;
                 for (auto item : fields) cfg.attr(item.first) = item.second;
                 const LoaderConfig& c = cfg.cast<const LoaderConfig&>();
                 check_config(c);
                 return std::make_unique<Loader>(fs_paths(paths), c);
             }),
             py::arg("paths"), py::arg("height"), py::arg("width"), py::arg("channels"))
        .def("__len__", &Loader::size)
        .def_property_readonly("config", &Loader::config, py::return_value_policy::copy)
        .def(
            "iterate",
            [](const Loader& l, py::array_t<int64_t, py::array::c_style | py::array::forcecast> order,
               int batch_size, int64_t epoch, bool fed) {
                std::vector<int64_t> o(order.data(), order.data() + order.size());
                return IteratorHolder(l.iterate(std::move(o), batch_size, epoch, fed).release());
            },
            py::arg("order"), py::arg("batch_size"), py::arg("epoch") = 0, py::arg("fed") = false)
        .def(
            "augments",
            [](const Loader& l, py::array_t<int64_t, py::array::c_style | py::array::forcecast> files, int64_t epoch) {
                std::vector<int64_t> f(files.data(), files.data() + files.size());
                std::vector<FileAugment> r = without_gil([&] { return file_augments(l, f, epoch); });
                return augments_dict(
                    r.size(),
                    [&](size_t i, int& H, int& W) {
                        H = r[i].height;
                        W = r[i].width;
                        return r[i].augment;
                    },
                    true);
            },
            py::arg("files"), py::arg("epoch"))
        .def(
            "load",
            [](const Loader& l, size_t index, int64_t epoch) {
                if (index >= l.size()) throw py::index_error("file index out of range");
                py::array out = new_sample(l.config());
                uint8_t* dst = static_cast<uint8_t*>(out.mutable_data());
                try {
                    py::gil_scoped_release nogil;
                    l.load_one(index, dst, epoch);
                } catch (const DecodeError& e) {
                    raise_load_error(l.path(index), e.what(), -1, static_cast<int64_t>(index));
                }
                return out;
            },
            py::arg("index"), py::arg("epoch") = 0);

    m.def(
        "draw_augments",
        [](const LoaderConfig& cfg, int64_t epoch, py::array_t<int64_t, py::array::c_style | py::array::forcecast> files,
           py::array_t<int64_t, py::array::c_style | py::array::forcecast> heights,
           py::array_t<int64_t, py::array::c_style | py::array::forcecast> widths) {
            const size_t n = static_cast<size_t>(files.size());
            if (static_cast<size_t>(heights.size()) != n || static_cast<size_t>(widths.size()) != n)
                throw std::invalid_argument("file_indices, heights and widths differ in length");
            check_range(cfg.crop_scale, "crop_scale");
            check_range(cfg.crop_ratio, "crop_ratio");
            const AugmentParams p = cfg.augment();
            const int64_t *f = files.data(), *hh = heights.data(), *ww = widths.data();
            for (size_t i = 0; i < n; ++i)
                if (hh[i] < 1 || ww[i] < 1 || hh[i] > INT32_MAX || ww[i] > INT32_MAX)
                    throw std::invalid_argument("image heights and widths must be positive");
            return augments_dict(
                n,
                [&](size_t i, int& H, int& W) {
                    H = static_cast<int>(hh[i]);
                    W = static_cast<int>(ww[i]);
                    return draw_augment(p, epoch, f[i], H, W);
                },
                false);
        },
        py::arg("config"), py::arg("epoch"), py::arg("file_indices"), py::arg("heights"), py::arg("widths"));
}
