// The file index: every indexed file once, compactly. Files are kept in Keras' order as
// runs that share a folder; each run has one entry in the folder table (its path prefix and
// the class folder, "top", it was found under) and each file only its name, in one arena.
// A path is the folder prefix plus the name, built when asked for. A FileList is a
// selection of an index's files (a shuffle, a split): shared, never copied, by the loader,
// every dataset made from it and every worker.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace pyimgdir {

class FileIndex {
  public:
    // Building, in order: start a run of files under `prefix` ("" or ending in '/'), then
    // add their names. An empty run is dropped when the next one starts.
    void begin_folder(std::string prefix, int32_t top);
    void add_name(std::string_view name);
    // Splits `path` after its last '/' and appends it, starting a new run when the folder
    // or top differs from the last file's.
    void add_path(std::string_view path, int32_t top);
    void shrink_to_fit();

    size_t size() const { return n_; }
    size_t num_folders() const { return folders_.size(); }
    std::string path(size_t i) const;
    void append_path(size_t i, std::string& out) const;
    std::string_view name(size_t i) const;
    size_t folder_of(size_t i) const;
    const std::string& folder(size_t f) const { return folders_[f]; }
    int32_t folder_top(size_t f) const { return folder_top_[f]; }
    int32_t top(size_t i) const { return folder_top_[folder_of(i)]; }
    // Files per top 0..num_tops-1 (tops outside that range are not counted).
    std::vector<int64_t> counts_per_top(int32_t num_tops) const;
    // Bytes held (capacity of every table and string).
    size_t memory_bytes() const;

    // A byte string that from_bytes() turns back into an equal index (pickling, manifests).
    std::string to_bytes() const;
    // Throws std::invalid_argument when `data` is not a well-formed index. `prefix` is put
    // before every folder (an index written with paths relative to its directory).
    static std::shared_ptr<FileIndex> from_bytes(std::string_view data, std::string_view prefix = {});

  private:
    friend class FileList;
    size_t name_end(size_t i, size_t f) const;
    void sync();  // points the views at the owned storage

    std::vector<std::string> folders_;   // path prefix of each run
    std::vector<int32_t> folder_top_;    // class folder of each run
    std::vector<uint64_t> folder_first_; // first file of each run
    std::vector<uint64_t> folder_base_;  // arena offset of each run's first name
    std::vector<uint32_t> name_off_;     // each name's start, relative to its run's base
    std::string arena_;                  // every name, back to back
    // What readers use: the two above, or the same tables in a mapped file.
    const uint32_t* off_ = nullptr;
    const char* names_ = nullptr;
    size_t n_ = 0, names_size_ = 0;
    std::shared_ptr<const void> mapping_;  // keeps a mapped file's pages alive
};

// Rows of an index, in a given order (or all of them, in index order).
class FileList {
  public:
    FileList() : index_(std::make_shared<FileIndex>()) {}
    explicit FileList(std::shared_ptr<const FileIndex> index) : index_(std::move(index)) {}
    // Throws std::out_of_range for a row outside the index.
    FileList(std::shared_ptr<const FileIndex> index, std::vector<uint32_t> rows);

    size_t size() const { return rows_ ? nrows_ : index_->size(); }
    uint32_t row(size_t i) const { return rows_ ? rows_.get()[i] : static_cast<uint32_t>(i); }
    std::string path(size_t i) const { return index_->path(row(i)); }
    const FileIndex& index() const { return *index_; }
    const std::shared_ptr<const FileIndex>& index_ptr() const { return index_; }
    bool all_rows() const { return !rows_; }
    // The files at `positions` of this list, in that order (same index, rows composed).
    FileList select(const std::vector<int64_t>& positions) const;
    // Bytes this list holds itself (its rows; not its index's, not a mapped file's).
    size_t memory_bytes() const { return owned_rows_ ? nrows_ * sizeof(uint32_t) : 0; }

    // Writes the index and the rows to `path` in a layout read in place: processes that
    // map it (map_file) share its pages instead of each holding a copy.
    void write_mapped(const std::string& path) const;
    // Throws std::invalid_argument (not such a file, damaged) or std::runtime_error (I/O).
    static FileList map_file(const std::string& path);

  private:
    std::shared_ptr<const FileIndex> index_;
    std::shared_ptr<const uint32_t> rows_;  // null: every row, in order
    size_t nrows_ = 0;
    bool owned_rows_ = false;
};

}  // namespace pyimgdir
