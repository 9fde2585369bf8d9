#include "core/file_index.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include <cerrno>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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
    sync();
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
    sync();
}

size_t FileIndex::folder_of(size_t i) const {
    // The last run starting at or before i (runs are never empty once the next one starts).
    auto it = std::upper_bound(folder_first_.begin(), folder_first_.end(), static_cast<uint64_t>(i));
    return static_cast<size_t>(it - folder_first_.begin()) - 1;
}

size_t FileIndex::name_end(size_t i, size_t f) const {
    if (f + 1 < folders_.size() && i + 1 == folder_first_[f + 1]) return folder_base_[f + 1];
    if (i + 1 == size()) return names_size_;
    return folder_base_[f] + off_[i + 1];
}

std::string_view FileIndex::name(size_t i) const {
    const size_t f = folder_of(i);
    const size_t start = folder_base_[f] + off_[i];
    return std::string_view(names_ + start, name_end(i, f) - start);
}

void FileIndex::append_path(size_t i, std::string& out) const {
    const size_t f = folder_of(i);
    const size_t start = folder_base_[f] + off_[i];
    out += folders_[f];
    out.append(names_ + start, name_end(i, f) - start);
}

void FileIndex::sync() {
    off_ = name_off_.data();
    names_ = arena_.data();
    n_ = name_off_.size();
    names_size_ = arena_.size();
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
    out.reserve(sizeof(kMagic) + names_size_ + size() + folders_.size() * 24);
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
            const size_t start = folder_base_[f] + off_[i];
            put_varint(out, name_end(i, f) - start);
        }
    }
    for (size_t f = 0; f < folders_.size(); ++f) {
        const uint64_t end = f + 1 < folders_.size() ? folder_first_[f + 1] : size();
        const size_t from = folder_base_[f];
        const size_t to = end ? name_end(end - 1, f) : from;
        out.append(names_ + from, to - from);
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

namespace {

std::shared_ptr<const uint32_t> share_rows(std::vector<uint32_t> rows) {
    auto holder = std::make_shared<const std::vector<uint32_t>>(std::move(rows));
    return std::shared_ptr<const uint32_t>(holder, holder->data());
}

}  // namespace

FileList::FileList(std::shared_ptr<const FileIndex> index, std::vector<uint32_t> rows) : index_(std::move(index)) {
    const size_t n = index_->size();
    for (uint32_t r : rows)
        if (r >= n) throw std::out_of_range("row outside the file index");
    nrows_ = rows.size();
    rows_ = share_rows(std::move(rows));
    owned_rows_ = true;
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
    out.nrows_ = rows.size();
    out.rows_ = share_rows(std::move(rows));
    out.owned_rows_ = true;
    return out;
}

// ---------------------------------------------------------------------------------------
// Mapped files. Layout (little-endian, 8-byte aligned sections):
//   magic; u64 files, runs, name bytes, table bytes, rows (kAllRows: every row)
//   table: per run, varints: files, top + 1, name base, prefix length; then the prefix
//   u32 name offsets [files]; u32 rows [rows]; names

namespace {

constexpr char kMappedMagic[8] = {'P', 'Y', 'I', 'D', 'X', 'M', '1', '\0'};
constexpr uint64_t kAllRows = ~uint64_t(0);

size_t pad8(size_t n) { return (n + 7) & ~size_t(7); }

void put_u64(std::string& out, uint64_t v) {
    for (int k = 0; k < 8; ++k) out.push_back(static_cast<char>((v >> (8 * k)) & 0xFF));
}

uint64_t get_u64(const char* p) {
    uint64_t v = 0;
    for (int k = 0; k < 8; ++k) v |= static_cast<uint64_t>(static_cast<unsigned char>(p[k])) << (8 * k);
    return v;
}

struct Mapping {
    void* addr = nullptr;
    size_t size = 0;
    ~Mapping() {
        if (addr) ::munmap(addr, size);
    }
};

}  // namespace

void FileList::write_mapped(const std::string& path) const {
    const FileIndex& x = *index_;
    std::string table;
    for (size_t f = 0; f < x.folders_.size(); ++f) {
        const uint64_t end = f + 1 < x.folders_.size() ? x.folder_first_[f + 1] : x.size();
        put_varint(table, end - x.folder_first_[f]);
        put_varint(table, static_cast<uint64_t>(static_cast<int64_t>(x.folder_top_[f]) + 1));
        put_varint(table, x.folder_base_[f]);
        put_varint(table, x.folders_[f].size());
        table += x.folders_[f];
    }
    std::string head(kMappedMagic, sizeof(kMappedMagic));
    put_u64(head, x.size());
    put_u64(head, x.folders_.size());
    put_u64(head, x.names_size_);
    put_u64(head, table.size());
    put_u64(head, rows_ ? nrows_ : kAllRows);
    head += table;
    head.resize(pad8(head.size()), '\0');
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    auto write_all = [&](const void* data, size_t n) {
        const char* p = static_cast<const char*>(data);
        while (n > 0) {
            const ssize_t w = ::write(fd, p, n);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) {
                const std::string why = std::strerror(errno);
                ::close(fd);
                throw std::runtime_error(path + ": " + why);
            }
            p += w;
            n -= static_cast<size_t>(w);
        }
    };
    static const char zeros[8] = {};
    write_all(head.data(), head.size());
    write_all(x.off_, x.size() * sizeof(uint32_t));
    write_all(zeros, pad8(x.size() * 4) - x.size() * 4);
    if (rows_) {
        write_all(rows_.get(), nrows_ * sizeof(uint32_t));
        write_all(zeros, pad8(nrows_ * 4) - nrows_ * 4);
    }
    write_all(x.names_, x.names_size_);
    if (::close(fd) != 0) throw std::runtime_error(path + ": " + std::strerror(errno));
}

FileList FileList::map_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(path + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        throw std::runtime_error(path + ": " + std::strerror(errno));
    }
    auto m = std::make_shared<Mapping>();
    m->size = static_cast<size_t>(st.st_size);
    if (m->size > 0) {
        m->addr = ::mmap(nullptr, m->size, PROT_READ, MAP_SHARED, fd, 0);
        if (m->addr == MAP_FAILED) {
            m->addr = nullptr;
            ::close(fd);
            throw std::runtime_error(path + ": " + std::strerror(errno));
        }
    }
    ::close(fd);
    const char* base = static_cast<const char*>(m->addr);
    const size_t size = m->size;
    constexpr size_t kHead = sizeof(kMappedMagic) + 5 * 8;
    if (size < kHead || std::memcmp(base, kMappedMagic, sizeof(kMappedMagic)) != 0) Reader::bad("wrong header");
    const char* h = base + sizeof(kMappedMagic);
    const uint64_t n = get_u64(h), runs = get_u64(h + 8), names = get_u64(h + 16), table = get_u64(h + 24),
                   nrows = get_u64(h + 32);
    if (n > kMaxFiles || runs > size || names > size || table > size - kHead || (n > 0 && runs == 0) ||
        (nrows != kAllRows && nrows > size / 4))
        Reader::bad("bad counts");
    const size_t off_at = pad8(kHead + static_cast<size_t>(table));
    const size_t rows_at = off_at + pad8(static_cast<size_t>(n) * 4);
    const size_t names_at = rows_at + (nrows == kAllRows ? 0 : pad8(static_cast<size_t>(nrows) * 4));
    if (names_at > size || size - names_at != names) Reader::bad("bad sizes");
    auto idx = std::make_shared<FileIndex>();
    Reader r{std::string_view(base + kHead, static_cast<size_t>(table)), 0};
    const auto* offs = reinterpret_cast<const uint32_t*>(base + off_at);
    // Every name starts at or after the one before it and inside the names section, so
    // each name (up to the next one's start) is a valid slice.
    uint64_t first = 0, last_start = 0;
    for (uint64_t f = 0; f < runs; ++f) {
        const uint64_t files = r.varint(), top = r.varint(), run_base = r.varint();
        const std::string_view prefix = r.bytes(r.varint());
        if (files == 0 || files > n - first || top > static_cast<uint64_t>(INT32_MAX) + 1 ||
            run_base < last_start || run_base > names)
            Reader::bad("bad folder table");
        for (uint64_t i = first; i < first + files; ++i) {
            const uint64_t start = run_base + offs[i];
            if (start < last_start || start > names) Reader::bad("bad name offsets");
            last_start = start;
        }
        idx->folders_.emplace_back(prefix);
        idx->folder_top_.push_back(static_cast<int32_t>(static_cast<int64_t>(top) - 1));
        idx->folder_first_.push_back(first);
        idx->folder_base_.push_back(run_base);
        first += files;
    }
    if (r.pos != r.data.size() || first != n) Reader::bad("bad folder table");
    idx->off_ = offs;
    idx->names_ = base + names_at;
    idx->n_ = static_cast<size_t>(n);
    idx->names_size_ = static_cast<size_t>(names);
    idx->mapping_ = m;
    FileList out{std::shared_ptr<const FileIndex>(idx)};
    if (nrows != kAllRows) {
        const auto* rows = reinterpret_cast<const uint32_t*>(base + rows_at);
        for (uint64_t k = 0; k < nrows; ++k)
            if (rows[k] >= n) Reader::bad("row outside the index");
        out.rows_ = std::shared_ptr<const uint32_t>(m, rows);
        out.nrows_ = static_cast<size_t>(nrows);
    }
    return out;
}

}  // namespace pyimgdir
