// Directory enumeration with Keras' rules (dataset_utils.index_subdirectory over os.walk):
// every directory under each top is listed, in parallel; the walked directories are ordered
// by their path, files by name within each; a file is kept when its lower-cased name ends
// with an allowed extension. Symlinked directories are descended only with follow_links,
// and then a link back to one of its own ancestors is not descended again (os.walk would
// loop until ELOOP).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/file_index.hpp"

namespace pyimgdir {

struct WalkOptions {
    bool follow_links = false;
    int num_threads = 0;                  // 0: one per core
    std::vector<std::string> extensions;  // lower case, with the dot: ".jpg"
};

struct WalkResult {
    // Every top's files, in Keras' order, top after top. A file's path is
    // `prefix + relative path`; its run's top is the top's position in `tops`.
    std::shared_ptr<FileIndex> index;
    int64_t directories_listed = 0;
    // Directories that exist but could not be listed (os.walk skips these silently).
    std::vector<std::string> unreadable_directories;
};

// Counters another thread may read while a walk runs (for progress reports).
struct WalkProgress {
    std::atomic<int64_t> directories{0};
    std::atomic<int64_t> files{0};
};

// `tops[i]` is walked and each file path is reported as `prefixes[i] + rel`, where rel is
// the '/'-joined path below tops[i]. A top that cannot be listed contributes no files.
WalkResult walk(const std::vector<std::string>& tops, const std::vector<std::string>& prefixes,
                const WalkOptions& opts, WalkProgress* progress = nullptr);

}  // namespace pyimgdir
