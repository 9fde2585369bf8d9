// Entropy-coded data of baseline JPEG scans, read outside libjpeg: Huffman tables and a bit
// reader over unstuffed data, and the process-wide checkpoints (bit position and DC
// predictors at fixed MCUs) that let a walk start in the middle of a scan. Shared by the
// 1/8 and 1/4 decoder (decode_jpeg_eighth.cpp) and the region re-encoder (jpeg_region_scan.cpp).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <jpeglib.h>

namespace pyimgdir {

// The checkpoint table (process-wide, capped at PYIMGDIR_JPEG_CHECKPOINT_MB, default 256 MiB;
// 0 turns checkpoints off) and how many crops were decoded through a rewritten scan.
struct JpegCheckpointStats {
    size_t scans;     // scans with checkpoints kept
    size_t bytes;     // their memory
    size_t budget;    // the cap
    size_t rewrites;  // crops decoded from a smaller JPEG of their MCUs (jpeg_region_scan.hpp)
};
JpegCheckpointStats jpeg_checkpoint_stats();

namespace entropy {

inline constexpr int kFastBits = 9;    // one-symbol lookup: codes up to 9 bits
inline constexpr int kSkipBits = 13;   // luma AC skip lookup: as many whole symbols as fit in 13 bits
inline constexpr int kValueBits = 11;  // AC value lookup: a code and its value bits within 11 bits
inline constexpr size_t kPad = 8192;   // zero bytes after the data; one MCU reads under kPad / 2

// Zig-zag position -> natural (row-major) position in the 8x8 block (JPEG, Figure A.6).
inline constexpr uint8_t kNatural[64] = {0,  1,  8,  16, 9,  2,  3,  10, 17, 24, 32, 25, 18, 11, 4,  5,
                                  12, 19, 26, 33, 40, 48, 41, 34, 27, 20, 13, 6,  7,  14, 21, 28,
                                  35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51,
                                  58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};

struct Huffman {
    uint16_t fast[1 << kFastBits];  // (code length << 8) | symbol; 0: a longer code
    int32_t maxcode[17];            // largest code of each length, -1 when none
    int32_t offset[17];             // vals index of a code of each length, minus the code
    uint8_t vals[256];
    // AC tables only: for the next kSkipBits bits, the bits taken by the whole symbols (codes and
    // their value bits) they hold, the coefficient positions those advance, and bit 15 when
    // the last of them is end-of-block. 0: decode one symbol the long way.
    uint16_t skip[1 << kSkipBits];
    // AC tables only: for the next kValueBits bits holding a whole nonzero coefficient (code
    // and value bits), (value << 16) | (zero run << 8) | bits taken. 0: decode the long way.
    int32_t value[1 << kValueBits];
};

// The value of `s` bits read as a JPEG magnitude category (libjpeg's HUFF_EXTEND).
inline int extend(int v, int s) { return v < (1 << (s - 1)) ? v - (1 << s) + 1 : v; }

// Builds a table from a DHT segment as libjpeg checks it (jpeg_make_d_derived_tbl): at most
// 256 symbols, no all-ones code of any length, DC symbols at most 15. Returns false where
// libjpeg would refuse the table.
bool build_huffman(const JHUFF_TBL* t, bool dc, Huffman& h);

// MSB-first bit reader over unstuffed data followed by kPad zero bytes.
struct Bits {
    const uint8_t* p;
    uint64_t buf = 0;
    int n = 0;  // valid bits at the top of buf

    explicit Bits(const uint8_t* start) : p(start) {}
    void refill() {  // afterwards at least 56 bits are valid
        uint64_t v;
        std::memcpy(&v, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        v = __builtin_bswap64(v);
#endif
        buf |= v >> n;
        p += (63 - n) >> 3;
        n |= 56;
    }
    uint32_t peek(int k) const { return static_cast<uint32_t>(buf >> (64 - k)); }
    void drop(int k) {
        buf <<= k;
        n -= k;
    }
    int64_t consumed(const uint8_t* start) const { return (p - start) * 8 - n; }
};

inline bool decode_symbol(Bits& b, const Huffman& h, int& sym) {
    const uint16_t f = h.fast[b.peek(kFastBits)];
    if (f) {
        b.drop(f >> 8);
        sym = f & 0xFF;
        return true;
    }
    for (int l = kFastBits + 1; l <= 16; ++l) {
        const int32_t code = static_cast<int32_t>(b.peek(l));
        if (code <= h.maxcode[l]) {
            b.drop(l);
            sym = h.vals[h.offset[l] + code];
            return true;
        }
    }
    return false;  // no such code: damaged data
}

// Walks one block's AC codes without keeping the values.
inline bool skip_ac(Bits& b, const Huffman& h) {
    for (int k = 1; k < 64;) {
        if (b.n < 32) b.refill();
        const uint16_t e = h.skip[b.peek(kSkipBits)];
        const int used = e & 0xFF, advance = (e >> 8) & 0x7F, eob = e >> 15;
        // An end-of-block inside the entry counts only if the block is not already full.
        if (used && k + advance + eob <= 64) {
            b.drop(used);
            if (eob) return true;
            k += advance;
            continue;
        }
        int rs;
        if (!decode_symbol(b, h, rs)) return false;
        const int run = rs >> 4, size = rs & 15;
        if (size) {
            b.drop(size);
            k += run + 1;
        } else {
            if (run != 15) return true;
            k += 16;
        }
    }
    return true;
}

// Huffman tables built from a file's DHT segments, kept per thread: a table is rebuilt only
// when the file's DHT differs from the last one (files from one encoder usually share theirs).
struct TableCache {
    Huffman tables[8];           // DC 0-3, AC 0-3
    JHUFF_TBL built_from[8];     // the DHT contents each table was last built from
    bool built[8] = {};

    // The table for slot `i`, rebuilt only when the file's DHT differs from the last one
    // (files from one encoder usually share their tables). Null where libjpeg would refuse
    // the table, and where the file has none (libjpeg then substitutes its default tables).
    const Huffman* table(int i, const JHUFF_TBL* t) {
        if (t == nullptr) return nullptr;
        if (built[i] && std::memcmp(built_from[i].bits, t->bits, sizeof(t->bits)) == 0 &&
            std::memcmp(built_from[i].huffval, t->huffval, sizeof(t->huffval)) == 0)
            return &tables[i];
        built[i] = false;
        if (!build_huffman(t, i < 4, tables[i])) return nullptr;
        std::memcpy(built_from[i].bits, t->bits, sizeof(t->bits));
        std::memcpy(built_from[i].huffval, t->huffval, sizeof(t->huffval));
        built[i] = true;
        return &tables[i];
    }
};

// A scan's entropy-coded data with stuffed zero bytes removed, split at restart markers
// (`ends`: the end of each interval in `data`), followed by kPad zero bytes.
struct Unstuffed {
    std::vector<uint8_t> data;
    std::vector<size_t> ends;
};

// Copies the entropy-coded data with stuffed zero bytes removed, splitting it at restart
// markers, which must come in order. Stops at any other marker; false if there is none.
bool unstuff(const uint8_t* p, const uint8_t* end, Unstuffed& s);

// -- entropy-data checkpoints kept between decodes -------------------------------------------
// Without restart markers the Huffman walk of a scan cannot start anywhere but its first MCU,
// so a crop near the bottom of a photo costs a walk over almost the whole file. Each walk
// therefore notes where every index_step()-th MCU of a row starts (bit position and DC
// predictors); a later decode of the same scan (the next epoch's crop of the same file) starts
// each MCU row of its region at the checkpoint left of the region. Checkpoints are kept per
// scan content (a hash of the header fields that shape the walk and of every byte of the
// scan), so a changed file is walked afresh, in a process-wide table capped at
// index_budget() bytes (past it, new scans are decoded without one).

// MCUs between checkpoints in a row: 16 in rows of 128 MCUs and more (large photos: less CPU
// per crop than 32, for a table a few tens of KB per 12 MP photo), 4 in narrower ones (a
// crop's edges are then at most 3 MCUs from a checkpoint).
inline int index_step(int mcus_per_row) { return mcus_per_row >= 128 ? 16 : 4; }

// PYIMGDIR_JPEG_CHECKPOINT_MB (MiB, default 256, fractions allowed; 0 or anything that is
// not a number turns checkpoints off), read once.
size_t index_budget();

struct Checkpoint {
    uint32_t bit;      // position in the unstuffed data
    int16_t pred[3];   // DC predictors, in scan component order (a clean scan's fit in 16 bits)
};

struct EntropyIndex {
    int rows = 0;                  // MCU rows whose checkpoints are all recorded
    std::vector<Checkpoint> cps;   // rows * ceil(MCUs per row / index_step) (the key fixes the layout)
    Checkpoint frontier{};         // the start of MCU row `rows`
    size_t bytes() const { return sizeof(*this) + cps.capacity() * sizeof(Checkpoint); }
};

class IndexTable {
  public:
    std::shared_ptr<const EntropyIndex> find(uint64_t key) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = map_.find(key);
        return it == map_.end() ? nullptr : it->second;
    }
    // Keeps `idx` unless the table already holds one covering as many rows.
    void store(uint64_t key, std::shared_ptr<const EntropyIndex> idx) {
        std::lock_guard<std::mutex> lock(mu_);
        auto it = map_.find(key);
        if (it != map_.end()) {
            if (it->second->rows >= idx->rows) return;
            if (bytes_ - it->second->bytes() + idx->bytes() > index_budget()) return;
            bytes_ -= it->second->bytes();
            bytes_ += idx->bytes();
            it->second = std::move(idx);
            return;
        }
        if (bytes_ + idx->bytes() > index_budget()) return;
        bytes_ += idx->bytes();
        map_.emplace(key, std::move(idx));
    }

    // Whether `bytes` more would still fit under the cap.
    bool has_room(size_t bytes) {
        std::lock_guard<std::mutex> lock(mu_);
        return bytes_ + bytes <= index_budget();
    }

    JpegCheckpointStats stats() {
        std::lock_guard<std::mutex> lock(mu_);
        return {map_.size(), bytes_, index_budget(), rewrites.load(std::memory_order_relaxed)};
    }

    std::atomic<size_t> rewrites{0};

  private:
    std::mutex mu_;
    std::unordered_map<uint64_t, std::shared_ptr<const EntropyIndex>> map_;
    size_t bytes_ = 0;
};

IndexTable& index_table();

// The table key of a scan: a hash of its bytes ([scan, end)) and of the header fields that
// shape its walk (image size, MCU layout, each component's index, sampling and Huffman
// tables, as `tables` last built them for the scan's components).
uint64_t scan_key(const jpeg_decompress_struct& ci, const uint8_t* scan, const uint8_t* end, const TableCache& tables);

// A 64-bit hash (xxHash64's round and merge constants, four lanes of 8-byte words).
class Hash64 {
  public:
    void add(const void* data, size_t n) {
        const uint8_t* p = static_cast<const uint8_t*>(data);
        for (; n >= 32; n -= 32, p += 32)
            for (int i = 0; i < 4; ++i) v_[i] = round(v_[i], word(p + 8 * i));
        for (; n >= 8; n -= 8, p += 8) v_[0] = round(v_[0], word(p));
        for (; n > 0; --n, ++p) v_[1] = round(v_[1], *p);
    }
    void add_value(uint64_t x) { v_[2] = round(v_[2], x); }
    uint64_t digest() const {
        uint64_t h = rotl(v_[0], 1) + rotl(v_[1], 7) + rotl(v_[2], 12) + rotl(v_[3], 18);
        for (uint64_t v : v_) h = (h ^ round(0, v)) * kP1 + kP4;
        h ^= h >> 33;
        h *= kP2;
        h ^= h >> 29;
        h *= kP3;
        return h ^ (h >> 32);
    }

  private:
    static constexpr uint64_t kP1 = 11400714785074694791ULL, kP2 = 14029467366897019727ULL,
                              kP3 = 1609587929392839161ULL, kP4 = 9650029242287828579ULL;
    static uint64_t rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
    static uint64_t round(uint64_t acc, uint64_t w) { return rotl(acc + w * kP2, 31) * kP1; }
    static uint64_t word(const uint8_t* p) {
        uint64_t w;
        std::memcpy(&w, p, 8);
        return w;
    }
    uint64_t v_[4] = {kP1 + kP2, kP2, 0, 0 - kP1};
};

}  // namespace entropy
}  // namespace pyimgdir
