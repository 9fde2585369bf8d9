#include "core/walk.hpp"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string_view>
#include <thread>
#include <utility>

#include <dirent.h>
#include <sys/stat.h>

namespace pyimgdir {
namespace {

struct DirId {
    dev_t dev;
    ino_t ino;
    bool operator==(const DirId& o) const { return dev == o.dev && ino == o.ino; }
};

// The chain of real directories from a top down to one directory, for the loop guard.
struct Ancestry {
    DirId id;
    std::shared_ptr<const Ancestry> parent;
    bool contains(const DirId& d) const {
        for (const Ancestry* a = this; a; a = a->parent.get())
            if (a->id == d) return true;
        return false;
    }
};

struct Task {
    size_t top;
    std::string rel;  // "" for the top itself, else "a/b"
    std::shared_ptr<const Ancestry> ancestry;
};

// Where one name lies in its directory's arena (offsets, not views: a Listed moves).
struct Span {
    uint32_t start, len;
};

// One directory's files: their names back to back in `arena`, listed in sorted order.
struct Listed {
    std::string rel;
    std::string arena;
    std::vector<Span> names;
    std::string_view name(const Span& s) const { return std::string_view(arena).substr(s.start, s.len); }
};

bool has_allowed_extension(const char* name, size_t len, const std::vector<std::string>& exts) {
    for (const auto& e : exts) {
        if (len < e.size()) continue;
        const char* tail = name + (len - e.size());
        bool ok = true;
        for (size_t i = 0; i < e.size(); ++i) {
            char ch = tail[i];
            if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
            if (ch != e[i]) {
                ok = false;
                break;
            }
        }
        if (ok) return true;
    }
    return false;
}

// Python sorts names as str: by code point, after decoding the bytes as UTF-8 with
// undecodable bytes mapped to U+DC80..U+DCFF (surrogateescape). For valid UTF-8 that is
// byte order; names with other bytes need the decoded comparison.
std::u32string python_key(std::string_view s) {
    std::u32string out;
    out.reserve(s.size());
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const size_t n = s.size();
    size_t i = 0;
    while (i < n) {
        const unsigned char c = p[i];
        int len = 0;
        char32_t cp = 0;
        if (c < 0x80) {
            len = 1;
            cp = c;
        } else if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        }
        bool ok = len > 0 && i + len <= n;
        for (int k = 1; ok && k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) ok = false;
            else cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        // Overlong forms, surrogates and values past U+10FFFF are invalid too.
        if (ok && ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
                   (len == 4 && (cp < 0x10000 || cp > 0x10FFFF))))
            ok = false;
        if (ok) {
            out.push_back(cp);
            i += static_cast<size_t>(len);
        } else {
            out.push_back(0xDC00 + c);
            i += 1;
        }
    }
    return out;
}

bool all_ascii(std::string_view s) {
    for (unsigned char c : s)
        if (c >= 0x80) return false;
    return true;
}

// Sorts in Python's str order.
template <typename T, typename Key>
void python_sort(std::vector<T>& items, Key key) {
    bool simple = true;
    for (const auto& it : items)
        if (!all_ascii(key(it))) {
            simple = false;
            break;
        }
    if (simple) {
        std::sort(items.begin(), items.end(), [&](const T& a, const T& b) { return key(a) < key(b); });
        return;
    }
    std::vector<std::pair<std::u32string, size_t>> keys(items.size());
    for (size_t i = 0; i < items.size(); ++i) keys[i] = {python_key(key(items[i])), i};
    std::sort(keys.begin(), keys.end());
    std::vector<T> sorted;
    sorted.reserve(items.size());
    for (auto& k : keys) sorted.push_back(std::move(items[k.second]));
    items = std::move(sorted);
}

class Walker {
  public:
    Walker(const std::vector<std::string>& tops, const WalkOptions& opts, WalkProgress* progress)
        : tops_(tops), opts_(opts), progress_(progress), listed_(tops.size()) {}

    void run() {
        for (size_t i = 0; i < tops_.size(); ++i) queue_.push_back(Task{i, std::string(), nullptr});
        pending_ = tops_.size();
        int n = opts_.num_threads > 0 ? opts_.num_threads
                                      : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
        std::vector<std::thread> threads;
        for (int i = 1; i < n; ++i) threads.emplace_back([this] { work(); });
        work();
        for (auto& t : threads) t.join();
    }

    std::vector<std::vector<Listed>> listed_per_top() { return std::move(listed_); }
    int64_t directories_listed() const { return dirs_listed_; }
    std::vector<std::string> unreadable() { return std::move(unreadable_); }

  private:
    void work() {
        for (;;) {
            Task task;
            {
                std::unique_lock<std::mutex> lk(mu_);
                cv_.wait(lk, [this] { return !queue_.empty() || pending_ == 0; });
                if (queue_.empty()) return;
                task = std::move(queue_.front());
                queue_.pop_front();
            }
            std::vector<Task> children;
            Listed result;
            bool ok = list_one(task, result, children);
            {
                std::lock_guard<std::mutex> lk(mu_);
                if (ok) {
                    if (progress_) {
                        progress_->directories.fetch_add(1, std::memory_order_relaxed);
                        progress_->files.fetch_add(static_cast<int64_t>(result.names.size()),
                                                   std::memory_order_relaxed);
                    }
                    listed_[task.top].push_back(std::move(result));
                    ++dirs_listed_;
                }
                for (auto& c : children) queue_.push_back(std::move(c));
                pending_ += children.size();
                --pending_;
            }
            cv_.notify_all();
        }
    }

    bool list_one(const Task& task, Listed& out, std::vector<Task>& children) {
        const std::string path = task.rel.empty() ? tops_[task.top] : join(tops_[task.top], task.rel);
        DIR* d = ::opendir(path.c_str());
        if (!d) {
            // os.walk ignores directories it cannot list; we do too, but remember them.
            if (errno != ENOENT && errno != ENOTDIR) {
                std::lock_guard<std::mutex> lk(mu_);
                unreadable_.push_back(path);
            }
            return false;
        }
        struct stat self;
        std::shared_ptr<const Ancestry> ancestry;
        if (opts_.follow_links && ::fstat(dirfd(d), &self) == 0)
            ancestry = std::make_shared<Ancestry>(Ancestry{DirId{self.st_dev, self.st_ino}, task.ancestry});
        out.rel = task.rel;
        while (dirent* e = ::readdir(d)) {
            const char* name = e->d_name;
            if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
            const size_t len = std::strlen(name);
            bool is_dir = false, is_link = false;
            struct stat target{};  // what a link points to (valid when is_link && is_dir)
            unsigned char type = e->d_type;
            if (type == DT_DIR) {
                is_dir = true;
            } else if (type == DT_LNK || type == DT_UNKNOWN) {
                const std::string full = join(path, name);
                if (type == DT_UNKNOWN) {
                    struct stat lst;
                    if (::lstat(full.c_str(), &lst) == 0) is_link = S_ISLNK(lst.st_mode);
                } else {
                    is_link = true;
                }
                // Like os.DirEntry.is_dir(): follows symlinks; a broken link is a file.
                if (::stat(full.c_str(), &target) == 0) is_dir = S_ISDIR(target.st_mode);
            }
            if (is_dir) {
                if (is_link && !opts_.follow_links) continue;
                std::string rel = task.rel.empty() ? std::string(name) : join(task.rel, name);
                if (is_link && ancestry && ancestry->contains(DirId{target.st_dev, target.st_ino}))
                    continue;  // a link back up the tree: already being walked
                children.push_back(Task{task.top, std::move(rel), ancestry});
            } else if (has_allowed_extension(name, len, opts_.extensions)) {
                if (out.arena.size() + len > UINT32_MAX) throw std::length_error("a directory's file names exceed 4 GiB");
                out.names.push_back(Span{static_cast<uint32_t>(out.arena.size()), static_cast<uint32_t>(len)});
                out.arena.append(name, len);
            }
        }
        ::closedir(d);
        python_sort(out.names, [&out](const Span& f) { return out.name(f); });
        return true;
    }

    static std::string join(const std::string& a, const std::string& b) {
        if (a.empty()) return b;
        if (a.back() == '/') return a + b;
        return a + "/" + b;
    }

    const std::vector<std::string>& tops_;
    const WalkOptions& opts_;
    WalkProgress* progress_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> queue_;
    size_t pending_ = 0;
    std::vector<std::vector<Listed>> listed_;
    int64_t dirs_listed_ = 0;
    std::vector<std::string> unreadable_;
};

}  // namespace

WalkResult walk(const std::vector<std::string>& tops, const std::vector<std::string>& prefixes,
                const WalkOptions& opts, WalkProgress* progress) {
    Walker w(tops, opts, progress);
    w.run();
    auto per_top = w.listed_per_top();
    WalkResult result;
    result.directories_listed = w.directories_listed();
    result.unreadable_directories = w.unreadable();
    result.index = std::make_shared<FileIndex>();
    FileIndex& index = *result.index;
    for (size_t t = 0; t < tops.size(); ++t) {
        auto& dirs = per_top[t];
        python_sort(dirs, [](const Listed& d) { return std::string_view(d.rel); });
        const std::string& prefix = prefixes[t];
        for (auto& d : dirs) {
            if (d.names.empty()) continue;
            index.begin_folder(d.rel.empty() ? prefix : prefix + d.rel + "/", static_cast<int32_t>(t));
            for (const Span& s : d.names) index.add_name(d.name(s));
            d = Listed{};  // give its memory back as the index grows
        }
    }
    index.shrink_to_fit();
    return result;
}

}  // namespace pyimgdir
