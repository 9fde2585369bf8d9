// _core's loader: LoaderConfig, Loader, the epoch iterator that hands out pinned batch
// buffers as numpy views, FileChecker, and the augmentation draws.
#include <array>
#include <cmath>
#include <cstring>
#include <memory>

#include "bindings_common.hpp"
#include "core/decode.hpp"

namespace pyimgdir {
namespace {

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

// An epoch order (any integer array, any strides) as the core's 32-bit file indices, read
// in place: no widened copy of a large order is made on the way.
std::vector<uint32_t> file_order(const py::array& a) {
    if (a.ndim() > 1) throw std::invalid_argument("the order must be one-dimensional");
    const py::ssize_t n = a.ndim() == 0 ? 1 : a.shape(0);
    const py::ssize_t stride = a.ndim() == 0 ? 0 : a.strides(0);
    const char* base = static_cast<const char*>(a.data());
    const py::dtype dt = a.dtype();
    std::vector<uint32_t> out(static_cast<size_t>(n));
    auto fill = [&](auto tag) {
        using T = decltype(tag);
        for (py::ssize_t i = 0; i < n; ++i) {
            T v;
            std::memcpy(&v, base + i * stride, sizeof(T));
            if (v < 0 || static_cast<uint64_t>(v) > UINT32_MAX)
                throw std::out_of_range("file index out of range in the epoch order");
            out[static_cast<size_t>(i)] = static_cast<uint32_t>(v);
        }
    };
    // By kind and width, not by descriptor identity: numpy has two descriptors for a 64-bit
    // integer on LP64 ('l' and 'q'), and an array rebuilt from a buffer (Ray's and pickle's
    // out-of-band arrays) may carry the one that is not py::dtype::of<int64_t>().
    const char kind = dt.kind();
    const py::ssize_t width = dt.itemsize();
    const char order_char = dt.byteorder();
    const uint16_t probe = 1;
    const bool little = *reinterpret_cast<const unsigned char*>(&probe) == 1;
    const bool native = order_char == '=' || order_char == '|' || order_char == (little ? '<' : '>');
    if (native && kind == 'u' && width == 4) fill(uint32_t{});
    else if (native && kind == 'i' && width == 8) fill(int64_t{});
    else if (native && kind == 'i' && width == 4) fill(int32_t{});
    else if (native && kind == 'u' && width == 8) fill(uint64_t{});
    else {
        // Anything else (other widths, byte orders, bools, objects) is converted once to a
        // native int64 array, read by the same loop: no second dispatch on its dtype.
        auto cast = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(a);
        if (!cast) throw py::error_already_set();
        const int64_t* p = cast.data();
        const py::ssize_t m = cast.size();
        out.assign(static_cast<size_t>(m), 0);
        for (py::ssize_t i = 0; i < m; ++i) {
            if (p[i] < 0 || static_cast<uint64_t>(p[i]) > UINT32_MAX)
                throw std::out_of_range("file index out of range in the epoch order");
            out[static_cast<size_t>(i)] = static_cast<uint32_t>(p[i]);
        }
    }
    return out;
}

// A list of paths given directly (tests, benchmarks, one-off files) becomes an index too.
FileList file_list_of(const py::object& paths) {
    if (py::isinstance<FileList>(paths)) return paths.cast<FileList>();
    auto index = std::make_shared<FileIndex>();
    for (py::handle h : py::iter(paths)) index->add_path(fs_path(h), 0);
    index->shrink_to_fit();
    return FileList(index);
}

py::array new_sample(const LoaderConfig& cfg) {
    std::vector<py::ssize_t> shape = cfg.channels_first
                                         ? std::vector<py::ssize_t>{cfg.channels, cfg.height, cfg.width}
                                         : std::vector<py::ssize_t>{cfg.height, cfg.width, cfg.channels};
    if (cfg.output == OutputType::Float32) return py::array_t<float>(shape);
    return py::array_t<uint8_t>(shape);
}

}  // namespace

void register_loader(py::module_& m) {
    m.def("pinning_backend", &pinning_backend);

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
        .def(py::init([](const FileList& files, const LoaderConfig& cfg) {
                 check_config(cfg);
                 return std::make_unique<Loader>(files, cfg);
             }),
             py::arg("files"), py::arg("config"))
        .def(py::init([](const py::iterable& paths, const LoaderConfig& cfg) {
                 check_config(cfg);
                 return std::make_unique<Loader>(file_list_of(paths), cfg);
             }),
             py::arg("paths"), py::arg("config"))
        // Shorthand for tests and benchmarks: the size, then any LoaderConfig field by name.
        .def(py::init([](const py::object& paths, int height, int width, int channels, const py::kwargs& fields) {
                 py::object cfg = py::cast(LoaderConfig());
                 cfg.attr("height") = height;
                 cfg.attr("width") = width;
                 cfg.attr("channels") = channels;
                 for (auto item : fields) cfg.attr(item.first) = item.second;
                 const LoaderConfig& c = cfg.cast<const LoaderConfig&>();
                 check_config(c);
                 return std::make_unique<Loader>(file_list_of(paths), c);
             }),
             py::arg("paths"), py::arg("height"), py::arg("width"), py::arg("channels"))
        .def("__len__", &Loader::size)
        .def_property_readonly("files", &Loader::files, py::return_value_policy::copy)
        .def_property_readonly("config", &Loader::config, py::return_value_policy::copy)
        .def(
            "iterate",
            [](const Loader& l, const py::object& order, int batch_size, int64_t epoch, bool fed) {
                std::vector<uint32_t> o;
                if (py::isinstance<py::array>(order)) {
                    o = file_order(order.cast<py::array>());
                } else {
                    auto cast = py::array_t<int64_t, py::array::c_style | py::array::forcecast>::ensure(order);
                    if (!cast) throw py::error_already_set();
                    o = file_order(cast);
                }
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

}  // namespace pyimgdir
