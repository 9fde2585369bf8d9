#include "core/file_index.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

namespace pyimgdir {
namespace {

constexpr char kMagic[8] = {'P', 'Y', 'I', 'D', 'X', '1', '\n', '\0'};
constexpr uint64_t kMaxFiles = std::numeric_limits<uint32_t>::max();

void put_varint(std::string& out, uint64_t v) {
    while (v >= 0x80) {
        out.push_back(static_cast<char>((v & 0x7F) | 0x80));
        v >>= 7;
    }
    out.push_back(static_cast<char>(v));
}

struct Reader {
    std::string_view data;
    size_t pos = 0;

    [[noreturn]] static void bad(const char* what) {
        throw std::invalid_argument(std::string("not a pyimgdir file index: ") + what);
    }
    uint64_t varint() {
        uint64_t v = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= data.size()) bad("truncated");
            const auto b = static_cast<unsigned char>(data[pos++]);
            v |= static_cast<uint64_t>(b & 0x7F) << shift;
            if (!(b & 0x80)) return v;
        }
        bad("malformed number");
    }
    std::string_view bytes(uint64_t n) {
        if (n > data.size() - pos) bad("truncated");
        std::string_view s = data.substr(pos, static_cast<size_t>(n));
        pos += static_cast<size_t>(n);
        return s;
    }
};

}  // namespace

void FileIndex::begin_folder(std::string prefix, int32_t top) {
    if (!folders_.empty() && folder_first_.back() == size()) {
        folders_.back() = std::move(prefix);  // the previous run got no file
        folder_top_.back() = top;
        return;
    }
    folders_.push_back(std::move(prefix));
    folder_top_.push_back(top);
    folder_first_.push_back(size());
    folder_base_.push_back(arena_.size());
}

void FileIndex::add_name(std::string_view name) {
    if (folders_.empty()) begin_folder(std::string(), 0);
    if (size() >= kMaxFiles) throw std::length_error("a file index holds at most 4,294,967,295 files");
    const uint64_t rel = arena_.size() - folder_base_.back();
    if (rel > std::numeric_limits<uint32_t>::max()) {
        // One folder's names passed 4 GiB: continue in a new run of the same folder.
        std::string prefix = folders_.back();
        const int32_t t = folder_top_.back();
        folders_.push_back(std::move(prefix));
        folder_top_.push_back(t);
        folder_first_.push_back(size());
        folder_base_.push_back(arena_.size());
        name_off_.push_back(0);
    } else {
        name_off_.push_back(static_cast<uint32_t>(rel));
    }
    arena_.append(name.data(), name.size());
}

void FileIndex::add_path(std::string_view path, int32_t top) {
    const size_t slash = path.rfind('/');
    const std::string_view dir = slash == std::string_view::npos ? std::string_view() : path.substr(0, slash + 1);
    const std::string_view name = slash == std::string_view::npos ? path : path.substr(slash + 1);
    if (folders_.empty() || folder_top_.back() != top || folders_.back() != dir)
        begin_folder(std::string(dir), top);
    add_name(name);
}

void FileIndex::shrink_to_fit() {
    if (!folders_.empty() && folder_first_.back() == size()) {  // a trailing empty run
        folders_.pop_back();
        folder_top_.pop_back();
        folder_first_.pop_back();
        folder_base_.pop_back();
    }
    folders_.shrink_to_fit();
    folder_top_.shrink_to_fit();
    folder_first_.shrink_to_fit();
    folder_base_.shrink_to_fit();
    name_off_.shrink_to_fit();
    arena_.shrink_to_fit();
}

size_t FileIndex::folder_of(size_t i) const {
    // The last run starting at or before i (runs are never empty once the next one starts).
    auto it = std::upper_bound(folder_first_.begin(), folder_first_.end(), static_cast<uint64_t>(i));
    return static_cast<size_t>(it - folder_first_.begin()) - 1;
}

size_t FileIndex::name_end(size_t i, size_t f) const {
    if (f + 1 < folders_.size() && i + 1 == folder_first_[f + 1]) return folder_base_[f + 1];
    if (i + 1 == size()) return arena_.size();
    return folder_base_[f] + name_off_[i + 1];
}

std::string_view FileIndex::name(size_t i) const {
    const size_t f = folder_of(i);
    const size_t start = folder_base_[f] + name_off_[i];
    return std::string_view(arena_).substr(start, name_end(i, f) - start);
}

void FileIndex::append_path(size_t i, std::string& out) const {
    const size_t f = folder_of(i);
    const size_t start = folder_base_[f] + name_off_[i];
    out += folders_[f];
    out.append(arena_, start, name_end(i, f) - start);
}

std::string FileIndex::path(size_t i) const {
    if (i >= size()) throw std::out_of_range("file index out of range");
    std::string out;
    append_path(i, out);
    return out;
}

std::vector<int64_t> FileIndex::counts_per_top(int32_t num_tops) const {
    std::vector<int64_t> counts(static_cast<size_t>(std::max(num_tops, 0)), 0);
    for (size_t f = 0; f < folders_.size(); ++f) {
        const uint64_t end = f + 1 < folders_.size() ? folder_first_[f + 1] : size();
        const int32_t t = folder_top_[f];
        if (t >= 0 && t < num_tops) counts[static_cast<size_t>(t)] += static_cast<int64_t>(end - folder_first_[f]);
    }
    return counts;
}

size_t FileIndex::memory_bytes() const {
    size_t b = sizeof(*this) + arena_.capacity() + name_off_.capacity() * sizeof(uint32_t) +
               (folder_top_.capacity() * sizeof(int32_t)) +
               (folder_first_.capacity() + folder_base_.capacity()) * sizeof(uint64_t) +
               folders_.capacity() * sizeof(std::string);
    for (const auto& f : folders_)
        if (f.capacity() > 15) b += f.capacity() + 1;
    return b;
}

// Layout: magic, then varints: files, runs; per run: files in it, top + 1, prefix length,
// prefix; per file: name length; then the names back to back.
std::string FileIndex::to_bytes() const {
    std::string out(kMagic, sizeof(kMagic));
    out.reserve(sizeof(kMagic) + arena_.size() + size() + folders_.size() * 24);
    put_varint(out, size());
    put_varint(out, folders_.size());
    for (size_t f = 0; f < folders_.size(); ++f) {
        const uint64_t end = f + 1 < folders_.size() ? folder_first_[f + 1] : size();
        put_varint(out, end - folder_first_[f]);
        put_varint(out, static_cast<uint64_t>(static_cast<int64_t>(folder_top_[f]) + 1));
        put_varint(out, folders_[f].size());
        out += folders_[f];
    }
    for (size_t f = 0; f < folders_.size(); ++f) {
        const uint64_t end = f + 1 < folders_.size() ? folder_first_[f + 1] : size();
        for (uint64_t i = folder_first_[f]; i < end; ++i) {
            const size_t start = folder_base_[f] + name_off_[i];
            put_varint(out, name_end(i, f) - start);
        }
    }
    for (size_t f = 0; f < folders_.size(); ++f) {
        const uint64_t end = f + 1 < folders_.size() ? folder_first_[f + 1] : size();
        const size_t from = folder_base_[f];
        const size_t to = end ? name_end(end - 1, f) : from;
        out.append(arena_, from, to - from);
    }
    return out;
}

std::shared_ptr<FileIndex> FileIndex::from_bytes(std::string_view data, std::string_view prefix) {
    if (data.size() < sizeof(kMagic) || std::memcmp(data.data(), kMagic, sizeof(kMagic)) != 0)
        Reader::bad("wrong header");
    Reader r{data, sizeof(kMagic)};
    const uint64_t n = r.varint(), runs = r.varint();
    // Every file and run takes at least a byte: a count past the data is a lie.
    if (n > kMaxFiles || n > data.size() || runs > data.size() || (n > 0 && runs == 0)) Reader::bad("bad counts");
    struct Run {
        uint64_t files;
        int32_t top;
        std::string_view prefix;
    };
    std::vector<Run> table(static_cast<size_t>(runs));
    uint64_t total = 0;
    for (auto& run : table) {
        run.files = r.varint();
        const uint64_t top = r.varint();
        if (top > static_cast<uint64_t>(std::numeric_limits<int32_t>::max()) + 1) Reader::bad("bad class");
        run.top = static_cast<int32_t>(static_cast<int64_t>(top) - 1);
        run.prefix = r.bytes(r.varint());
        if (run.files > n - total) Reader::bad("runs hold more files than the index");
        total += run.files;
    }
    if (total != n) Reader::bad("runs hold fewer files than the index");
    std::vector<uint64_t> lengths(static_cast<size_t>(n));
    uint64_t arena = 0;
    for (auto& len : lengths) {
        len = r.varint();
        if (len > data.size()) Reader::bad("bad name length");
        arena += len;
    }
    std::string_view names = r.bytes(arena);
    if (r.pos != data.size()) Reader::bad("trailing bytes");
    auto idx = std::make_shared<FileIndex>();
    idx->folders_.reserve(table.size());
    idx->name_off_.reserve(static_cast<size_t>(n));
    idx->arena_.reserve(static_cast<size_t>(arena));
    size_t file = 0, at = 0;
    for (const auto& run : table) {
        if (run.files == 0) continue;
        std::string folder(prefix);
        folder += run.prefix;
        idx->begin_folder(std::move(folder), run.top);
        for (uint64_t k = 0; k < run.files; ++k, ++file) {
            const size_t len = static_cast<size_t>(lengths[file]);
            idx->add_name(names.substr(at, len));
            at += len;
        }
    }
    idx->shrink_to_fit();
    return idx;
}

FileList::FileList(std::shared_ptr<const FileIndex> index, std::vector<uint32_t> rows) : index_(std::move(index)) {
    const size_t n = index_->size();
    for (uint32_t r : rows)
        if (r >= n) throw std::out_of_range("row outside the file index");
    rows_ = std::make_shared<const std::vector<uint32_t>>(std::move(rows));
}

FileList FileList::select(const std::vector<int64_t>& positions) const {
    const size_t n = size();
    std::vector<uint32_t> rows(positions.size());
    for (size_t k = 0; k < positions.size(); ++k) {
        const int64_t p = positions[k];
        if (p < 0 || static_cast<size_t>(p) >= n) throw std::out_of_range("position outside the file list");
        rows[k] = row(static_cast<size_t>(p));
    }
    FileList out(index_);
    out.rows_ = std::make_shared<const std::vector<uint32_t>>(std::move(rows));
    return out;
}

}  // namespace pyimgdir
