// _core.walk: the parallel directory walk, with progress reported from the calling thread.
#include <chrono>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "bindings_common.hpp"
#include "core/walk.hpp"

namespace pyimgdir {

void register_walk(py::module_& m) {
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
}

}  // namespace pyimgdir
