// _core.walk / walk_index: the parallel directory walk, with progress reported from the
// calling thread; FileIndex and FileList, the compact index it produces; Grain's index
// shuffle over a whole range.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "bindings_common.hpp"
#include "core/file_index.hpp"
#include "core/index_shuffle.hpp"
#include "core/walk.hpp"

namespace pyimgdir {
namespace {

using Int64Array = py::array_t<int64_t, py::array::c_style | py::array::forcecast>;

WalkResult run_walk(const py::iterable& tops_in, const py::iterable& prefixes_in, bool follow_links,
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
        return r;
    }
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
        bool finished = without_gil([&] {
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
    return r;
}

py::list paths_list(size_t n, const std::function<std::string(size_t)>& path) {
    py::list out(n);
    for (size_t i = 0; i < n; ++i) out[i] = fs_str(path(i));
    return out;
}

void check_range(size_t start, size_t stop, size_t size) {
    if (start > stop || stop > size) throw py::index_error("range outside the file list");
}

std::vector<uint32_t> rows_of(const Int64Array& a) {
    std::vector<uint32_t> rows(static_cast<size_t>(a.size()));
    const int64_t* p = a.data();
    for (size_t i = 0; i < rows.size(); ++i) {
        if (p[i] < 0 || p[i] > static_cast<int64_t>(UINT32_MAX)) throw py::index_error("row outside the file index");
        rows[i] = static_cast<uint32_t>(p[i]);
    }
    return rows;
}

}  // namespace

void register_walk(py::module_& m) {
    m.def(
        "walk",
        [](const py::iterable& tops, const py::iterable& prefixes, bool follow_links,
           const std::vector<std::string>& extensions, int num_threads, const py::object& progress) {
            WalkResult r = run_walk(tops, prefixes, follow_links, extensions, num_threads, progress);
            std::vector<py::list> per_top(static_cast<size_t>(py::len(tops)));
            const FileIndex& idx = *r.index;
            for (size_t i = 0; i < idx.size(); ++i) per_top[static_cast<size_t>(idx.top(i))].append(fs_str(idx.path(i)));
            py::list files;
            for (auto& l : per_top) files.append(l);
            return py::make_tuple(files, fs_list(r.unreadable_directories), r.directories_listed);
        },
        py::arg("tops"), py::arg("prefixes"), py::arg("follow_links"), py::arg("extensions"),
        py::arg("num_threads") = 0, py::arg("progress") = py::none());
    m.def(
        "walk_index",
        [](const py::iterable& tops, const py::iterable& prefixes, bool follow_links,
           const std::vector<std::string>& extensions, int num_threads, const py::object& progress) {
            WalkResult r = run_walk(tops, prefixes, follow_links, extensions, num_threads, progress);
            return py::make_tuple(r.index, fs_list(r.unreadable_directories),
                                  r.directories_listed);
        },
        py::arg("tops"), py::arg("prefixes"), py::arg("follow_links"), py::arg("extensions"),
        py::arg("num_threads") = 0, py::arg("progress") = py::none());

    py::class_<FileIndex, std::shared_ptr<FileIndex>>(m, "FileIndex")
        .def_static(
            "from_paths",
            [](const py::iterable& paths, const py::object& tops) {
                auto idx = std::make_shared<FileIndex>();
                if (tops.is_none()) {
                    for (py::handle h : paths) idx->add_path(fs_path(h), 0);
                } else {
                    py::iterator t = py::iter(tops);
                    for (py::handle h : paths) {
                        if (t == py::iterator::sentinel()) throw std::invalid_argument("fewer tops than paths");
                        idx->add_path(fs_path(h), (*t).cast<int32_t>());
                        ++t;
                    }
                }
                idx->shrink_to_fit();
                return idx;
            },
            py::arg("paths"), py::arg("tops") = py::none())
        .def_static(
            "from_bytes",
            [](const py::bytes& b, const py::object& prefix) {
                std::string_view v = b;
                const std::string p = prefix.is_none() ? std::string() : fs_path(prefix);
                return without_gil([&] { return FileIndex::from_bytes(v, p); });
            },
            py::arg("data"), py::arg("prefix") = py::none())
        .def("folders",
             [](const FileIndex& i) {
                 py::list out(i.num_folders());
                 for (size_t f = 0; f < i.num_folders(); ++f) out[f] = fs_str(i.folder(f));
                 return out;
             })
        .def("to_bytes", [](const FileIndex& i) { return py::bytes(without_gil([&] { return i.to_bytes(); })); })
        .def("__len__", &FileIndex::size)
        .def("path",
             [](const FileIndex& i, size_t k) {
                 if (k >= i.size()) throw py::index_error("file index out of range");
                 return fs_str(i.path(k));
             })
        .def("paths",
             [](const FileIndex& i, size_t start, size_t stop) {
                 check_range(start, stop, i.size());
                 return paths_list(stop - start, [&](size_t k) { return i.path(start + k); });
             })
        .def("file_tops",
             [](const FileIndex& i) {
                 py::array_t<int32_t> out(static_cast<py::ssize_t>(i.size()));
                 int32_t* p = out.mutable_data();
                 for (size_t k = 0; k < i.size(); ++k) p[k] = i.top(k);
                 return out;
             })
        .def("counts_per_top", &FileIndex::counts_per_top, py::arg("num_tops"))
        .def_property_readonly("num_folders", &FileIndex::num_folders)
        .def_property_readonly("memory_bytes", &FileIndex::memory_bytes)
        .def(py::pickle([](const FileIndex& i) { return py::bytes(i.to_bytes()); },
                        [](const py::bytes& b) { return FileIndex::from_bytes(std::string_view(b)); }));

    py::class_<FileList>(m, "FileList")
        .def(py::init([](std::shared_ptr<FileIndex> index, const py::object& rows) {
                 if (!index) throw std::invalid_argument("index is None");
                 if (rows.is_none()) return FileList(index);
                 return FileList(index, rows_of(rows.cast<Int64Array>()));
             }),
             py::arg("index"), py::arg("rows") = py::none())
        .def("__len__", &FileList::size)
        .def("path",
             [](const FileList& l, size_t k) {
                 if (k >= l.size()) throw py::index_error("file index out of range");
                 return fs_str(l.path(k));
             })
        .def("paths",
             [](const FileList& l, size_t start, size_t stop) {
                 check_range(start, stop, l.size());
                 return paths_list(stop - start, [&](size_t k) { return l.path(start + k); });
             })
        .def("paths_at",
             [](const FileList& l, const Int64Array& positions) {
                 const int64_t* p = positions.data();
                 const size_t n = static_cast<size_t>(positions.size());
                 for (size_t k = 0; k < n; ++k)
                     if (p[k] < 0 || static_cast<size_t>(p[k]) >= l.size()) throw py::index_error("position outside the file list");
                 return paths_list(n, [&](size_t k) { return l.path(static_cast<size_t>(p[k])); });
             })
        .def("select",
             [](const FileList& l, const Int64Array& positions) {
                 std::vector<int64_t> p(positions.data(), positions.data() + positions.size());
                 return l.select(p);
             })
        .def("rows",
             [](const FileList& l) {
                 py::array_t<int64_t> out(static_cast<py::ssize_t>(l.size()));
                 int64_t* p = out.mutable_data();
                 for (size_t k = 0; k < l.size(); ++k) p[k] = l.row(k);
                 return out;
             })
        .def_property_readonly("index", [](const FileList& l) { return std::const_pointer_cast<FileIndex>(l.index_ptr()); })
        .def_property_readonly("memory_bytes", &FileList::memory_bytes)
        .def(
            "write_mapped",
            [](const FileList& l, const py::object& path) {
                const std::string p = fs_path(path);
                without_gil([&] { l.write_mapped(p); });
            },
            py::arg("path"))
        .def_static(
            "map_file",
            [](const py::object& path) {
                const std::string p = fs_path(path);
                return without_gil([&] { return FileList::map_file(p); });
            },
            py::arg("path"))
        .def(py::pickle(
            [](const FileList& l) {
                py::object rows = py::none();
                if (!l.all_rows()) {
                    py::array_t<uint32_t> r(static_cast<py::ssize_t>(l.size()));
                    uint32_t* p = r.mutable_data();
                    for (size_t k = 0; k < l.size(); ++k) p[k] = l.row(k);
                    rows = r;
                }
                return py::make_tuple(std::const_pointer_cast<FileIndex>(l.index_ptr()), rows);
            },
            [](const py::tuple& t) {
                auto index = t[0].cast<std::shared_ptr<FileIndex>>();
                if (t[1].is_none()) return FileList(index);
                return FileList(index, rows_of(t[1].cast<Int64Array>()));
            }));

    m.def(
        "index_shuffle",
        [](int64_t index, int64_t max_index, uint32_t seed, int rounds) {
            if (index < 0 || max_index < 0) throw std::invalid_argument("index must be in [0, max_index]");
            return index_shuffle(static_cast<uint64_t>(index), static_cast<uint64_t>(max_index), seed, rounds);
        },
        py::arg("index"), py::arg("max_index"), py::arg("seed"), py::arg("rounds") = 4);
    m.def(
        "index_shuffle_permutation",
        [](int64_t n, uint32_t seed, int rounds) {
            if (n < 0) throw std::invalid_argument("n must not be negative");
            py::array_t<int64_t> out(static_cast<py::ssize_t>(n));
            int64_t* p = out.mutable_data();
            without_gil([&] { index_shuffle_permutation(n, seed, rounds, p); });
            return out;
        },
        py::arg("n"), py::arg("seed"), py::arg("rounds") = 4);
}

}  // namespace pyimgdir
