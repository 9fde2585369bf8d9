#include "core/jpeg_entropy.hpp"

#include <cstdlib>

namespace pyimgdir {
namespace entropy {

bool build_huffman(const JHUFF_TBL* t, bool dc, Huffman& h) {
    int total = 0;
    for (int l = 1; l <= 16; ++l) total += t->bits[l];
    if (total > 256) return false;
    std::memset(h.fast, 0, sizeof(h.fast));
    std::memcpy(h.vals, t->huffval, static_cast<size_t>(total));
    int32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; ++l) {
        const int count = t->bits[l];
        h.offset[l] = k - code;
        for (int i = 0; i < count; ++i, ++k, ++code) {
            if (code >= (int32_t(1) << l) - 1) return false;  // an all-ones (or longer) code
            if (dc && h.vals[k] > 15) return false;
            if (l <= kFastBits) {
                const int shift = kFastBits - l;
                for (int j = 0; j < (1 << shift); ++j)
                    h.fast[(code << shift) | j] = static_cast<uint16_t>(l << 8 | h.vals[k]);
            }
        }
        h.maxcode[l] = count ? code - 1 : -1;
        code <<= 1;
    }
    if (dc) return true;
    for (uint32_t idx = 0; idx < (1u << kValueBits); ++idx) {
        const uint16_t f = h.fast[idx >> (kValueBits - kFastBits)];
        const int len = f >> 8, run = (f & 0xFF) >> 4, size = f & 15;
        h.value[idx] = 0;
        if (len == 0 || size == 0 || len + size > kValueBits) continue;
        const int bits = static_cast<int>(idx >> (kValueBits - len - size)) & ((1 << size) - 1);
        h.value[idx] = static_cast<int32_t>(static_cast<uint32_t>(extend(bits, size)) << 16) | run << 8 | (len + size);
    }
    for (uint32_t idx = 0; idx < (1u << kSkipBits); ++idx) {
        int used = 0, advance = 0, eob = 0;
        while (used < kSkipBits) {
            const int left = kSkipBits - used;
            const uint16_t f = h.fast[((idx << used) & ((1u << kSkipBits) - 1)) >> (kSkipBits - kFastBits)];
            const int len = f >> 8;
            if (len == 0 || len > left) break;
            const int run = (f & 0xFF) >> 4, size = f & 15;
            if (len + size > left) break;
            used += len + size;
            if (size == 0 && run != 15) {
                eob = 1;
                break;
            }
            advance += size ? run + 1 : 16;
            if (advance > 63) break;
        }
        h.skip[idx] = static_cast<uint16_t>(used | advance << 8 | eob << 15);
    }
    return true;
}

bool unstuff(const uint8_t* p, const uint8_t* end, Unstuffed& s) {
    s.data.clear();
    s.ends.clear();
    int next_rst = 0;
    while (p < end) {
        const uint8_t* ff = static_cast<const uint8_t*>(std::memchr(p, 0xFF, static_cast<size_t>(end - p)));
        if (ff == nullptr) return false;  // the file ends inside the scan
        s.data.insert(s.data.end(), p, ff);
        const uint8_t* m = ff + 1;
        while (m < end && *m == 0xFF) ++m;  // fill bytes
        if (m == end) return false;
        if (*m == 0x00) {
            s.data.push_back(0xFF);
        } else if (*m >= 0xD0 && *m <= 0xD7) {
            if (*m - 0xD0 != next_rst) return false;
            next_rst = (next_rst + 1) & 7;
            s.ends.push_back(s.data.size());
        } else {
            s.ends.push_back(s.data.size());
            s.data.insert(s.data.end(), kPad, 0);
            return true;
        }
        p = m + 1;
    }
    return false;
}

size_t index_budget() {
    static const size_t budget = [] {
        const char* v = std::getenv("PYIMGDIR_JPEG_CHECKPOINT_MB");
        char* endp = nullptr;
        const double mb = v && *v ? std::strtod(v, &endp) : 256.0;
        const bool ok = endp == nullptr || *endp == 0;
        return ok && mb > 0 && mb < 1e9 ? static_cast<size_t>(mb * 1048576.0) : size_t(0);
    }();
    return budget;
}

IndexTable& index_table() {
    static IndexTable* t = new IndexTable;  // never destroyed: decode threads may outlive statics
    return *t;
}

uint64_t scan_key(const jpeg_decompress_struct& ci, const uint8_t* scan, const uint8_t* end, const TableCache& tables) {
    const int nc = ci.num_components;
    const int hmax = nc == 1 ? 1 : ci.max_h_samp_factor, vmax = nc == 1 ? 1 : ci.max_v_samp_factor;
    Hash64 hash;
    hash.add(scan, static_cast<size_t>(end - scan));
    hash.add_value(static_cast<uint64_t>(ci.image_width) << 32 | static_cast<uint32_t>(ci.image_height));
    hash.add_value(static_cast<uint64_t>(hmax) << 8 | static_cast<uint64_t>(vmax));
    for (int i = 0; i < ci.comps_in_scan; ++i) {
        const jpeg_component_info* cp = ci.cur_comp_info[i];
        const int h = nc == 1 ? 1 : cp->h_samp_factor, v = nc == 1 ? 1 : cp->v_samp_factor;
        hash.add_value(static_cast<uint64_t>(cp->component_index) << 16 | static_cast<uint64_t>(h) << 8 |
                       static_cast<uint64_t>(v));
        hash.add(&tables.built_from[cp->dc_tbl_no], sizeof(JHUFF_TBL::bits) + sizeof(JHUFF_TBL::huffval));
        hash.add(&tables.built_from[4 + cp->ac_tbl_no], sizeof(JHUFF_TBL::bits) + sizeof(JHUFF_TBL::huffval));
    }
    return hash.digest();
}

}  // namespace entropy

JpegCheckpointStats jpeg_checkpoint_stats() { return entropy::index_table().stats(); }

}  // namespace pyimgdir
