#include "core/jpeg_region_scan.hpp"

#include <algorithm>
#include <cstring>

#include "core/jpeg_entropy.hpp"

namespace pyimgdir {
namespace {

using namespace entropy;

// A Huffman DC table as an encoder: code and length of each category (0: no code).
struct DcEncoder {
    uint16_t code[16];
    uint8_t len[16];
};

void build_dc_encoder(const JHUFF_TBL& t, DcEncoder& e) {
    std::memset(e.len, 0, sizeof(e.len));
    uint32_t code = 0;
    int k = 0;
    for (int l = 1; l <= 16; ++l) {
        for (int i = 0; i < t.bits[l]; ++i, ++k, ++code) {
            const int sym = t.huffval[k];
            if (sym < 16 && e.len[sym] == 0) {
                e.code[sym] = static_cast<uint16_t>(code);
                e.len[sym] = static_cast<uint8_t>(l);
            }
        }
        code <<= 1;
    }
}

// MSB-first bit writer into entropy-coded data: every 0xFF byte is followed by a stuffed 0.
// Writes through a raw pointer into `out`, which the caller has sized for the worst case
// (every byte stuffed); four bytes at a time when none of them is 0xFF.
class BitWriter {
  public:
    explicit BitWriter(uint8_t* out) : o_(out) {}
    void put(uint32_t v, int k) {  // the low k bits of v, 0 < k <= 32
        acc_ = (acc_ << k) | (k == 32 ? v : (v & ((uint32_t(1) << k) - 1)));
        n_ += k;
        if (n_ >= 32) {
            n_ -= 32;
            const uint32_t w = static_cast<uint32_t>(acc_ >> n_);
            const uint32_t x = ~w;  // a 0xFF byte of w is a zero byte of x
            if (((x - 0x01010101u) & ~x & 0x80808080u) == 0) {
                const uint32_t be = __builtin_bswap32(w);
                std::memcpy(o_, &be, 4);
                o_ += 4;
            } else {
                for (int s = 24; s >= 0; s -= 8) byte(static_cast<uint8_t>(w >> s));
            }
        }
    }
    // Bits [from, to) of unstuffed data (padded, so loads past `to` are safe): up to a byte
    // boundary of the output through put(), then 64 bits per step, shifted into place.
    void copy(const uint8_t* data, uint64_t from, uint64_t to) {
        while (from < to && (n_ & 7) != 0) {
            const int k = static_cast<int>(std::min<uint64_t>(8 - (n_ & 7), to - from));
            put(bits(data, from) >> (32 - k), k);
            from += static_cast<uint64_t>(k);
        }
        while (n_ >= 8) {
            n_ -= 8;
            byte(static_cast<uint8_t>(acc_ >> n_));
        }
        for (; to - from >= 64; from += 64) {
            const uint8_t* p = data + from / 8;
            const int sh = static_cast<int>(from % 8);
            uint64_t w = load_be64(p);
            if (sh) w = (w << sh) | (p[8] >> (8 - sh));
            const uint64_t x = ~w;  // a 0xFF byte of w is a zero byte of x
            if (((x - 0x0101010101010101ULL) & ~x & 0x8080808080808080ULL) == 0) {
                uint64_t be = w;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                be = __builtin_bswap64(w);
#endif
                std::memcpy(o_, &be, 8);
                o_ += 8;
            } else {
                for (int s = 56; s >= 0; s -= 8) byte(static_cast<uint8_t>(w >> s));
            }
        }
        while (from < to) {
            const int k = static_cast<int>(std::min<uint64_t>(32, to - from));
            put(bits(data, from) >> (32 - k), k);
            from += static_cast<uint64_t>(k);
        }
    }
    // Pads the last byte with ones, as encoders do; returns the end of the data.
    uint8_t* finish() {
        while (n_ >= 8) {
            n_ -= 8;
            byte(static_cast<uint8_t>(acc_ >> n_));
        }
        if (n_ > 0) byte(static_cast<uint8_t>((acc_ << (8 - n_)) | ((1u << (8 - n_)) - 1)));
        n_ = 0;
        return o_;
    }

  private:
    static uint64_t load_be64(const uint8_t* p) {
        uint64_t w;
        std::memcpy(&w, p, 8);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        w = __builtin_bswap64(w);
#endif
        return w;
    }
    static uint32_t bits(const uint8_t* data, uint64_t from) {  // the 32 bits from bit `from`
        return static_cast<uint32_t>((load_be64(data + from / 8) << (from % 8)) >> 32);
    }
    void byte(uint8_t b) {
        *o_++ = b;
        if (b == 0xFF) *o_++ = 0;
    }
    uint8_t* o_;
    uint64_t acc_ = 0;
    int n_ = 0;
};

struct Comp {
    const Huffman* dc;
    const Huffman* ac;
    DcEncoder enc;
    int blocks;  // blocks per MCU
};

// A position in the scan: the bit where an MCU starts and the DC predictors before it.
struct Place {
    uint64_t bit = 0;
    int pred[3] = {0, 0, 0};
};

struct Walker {
    const uint8_t* base;
    Comp* comps;
    int nc;
    Bits b;
    int pred[3] = {0, 0, 0};

    Walker(const uint8_t* data, Comp* c, int n) : base(data), comps(c), nc(n), b(data) {}

    void seek(uint64_t bit, const int16_t* p) {
        b = Bits(base + bit / 8);
        b.refill();
        b.drop(static_cast<int>(bit % 8));
        for (int i = 0; i < 3; ++i) pred[i] = i < nc ? p[i] : 0;
    }
    Place here() const {
        Place at;
        at.bit = static_cast<uint64_t>(b.consumed(base));
        for (int i = 0; i < nc; ++i) at.pred[i] = pred[i];
        return at;
    }
    // One MCU. With `dc_at`, the first block of each component also reports where its DC
    // code starts and ends and its DC value. False on a bad code or a predictor leaving
    // 16 bits (damaged data only).
    bool mcu(uint64_t (*dc_at)[2] = nullptr, int* dc_value = nullptr) {
        for (int i = 0; i < nc; ++i) {
            const Comp& c = comps[i];
            for (int j = 0; j < c.blocks; ++j) {
                if (b.n < 32) b.refill();
                const uint64_t start = dc_at ? static_cast<uint64_t>(b.consumed(base)) : 0;
                int sz;
                if (!decode_symbol(b, *c.dc, sz)) return false;
                if (sz) {
                    const int v = static_cast<int>(b.peek(sz));
                    b.drop(sz);
                    pred[i] += extend(v, sz);
                    if (pred[i] < INT16_MIN || pred[i] > INT16_MAX) return false;
                }
                if (dc_at && j == 0) {
                    dc_at[i][0] = start;
                    dc_at[i][1] = static_cast<uint64_t>(b.consumed(base));
                    dc_value[i] = pred[i];
                }
                if (!skip_ac(b, *c.ac)) return false;
            }
        }
        return true;
    }
};

// The offset of the frame header (SOF0 or SOF1 marker) in [file, scan), or -1.
int64_t find_sof(const uint8_t* file, const uint8_t* scan) {
    const uint8_t* p = file + 2;  // after SOI
    while (p + 4 <= scan) {
        if (p[0] != 0xFF) return -1;
        const uint8_t m = p[1];
        if (m == 0xFF) {  // fill byte
            ++p;
            continue;
        }
        if (m == 0xD8 || m == 0x01 || (m >= 0xD0 && m <= 0xD7)) {
            p += 2;
            continue;
        }
        if (m == 0xC0 || m == 0xC1) return p - file;
        if (m == 0xDA) return -1;
        p += 2 + (static_cast<size_t>(p[2]) << 8 | p[3]);
    }
    return -1;
}

}  // namespace

bool region_scan(const jpeg_decompress_struct& ci, const uint8_t* file, const uint8_t* scan, const uint8_t* end,
                 const DecodeRegion& region, RegionScan& out) {
    thread_local TableCache tables;
    thread_local Unstuffed data;

    if (ci.progressive_mode || ci.arith_code || ci.data_precision != 8 || ci.restart_interval != 0) return false;
    // Full scale, or 1/2 and 1/4 (libjpeg's scaled IDCTs; the region is in scaled pixels).
    const int sc = static_cast<int>(ci.scale_denom);
    if (ci.scale_num != 1 || (sc != 1 && sc != 2 && sc != 4)) return false;
    if (ci.Ss != 0 || ci.Se != 63 || ci.Ah != 0 || ci.Al != 0) return false;
    const int nc = ci.num_components;
    if ((nc != 1 && nc != 3) || ci.comps_in_scan != nc) return false;
    if (index_budget() == 0) return false;
    const int hmax = nc == 1 ? 1 : ci.max_h_samp_factor, vmax = nc == 1 ? 1 : ci.max_v_samp_factor;
    if (hmax > 2 || vmax > 2) return false;
    const int width = static_cast<int>(ci.image_width), height = static_cast<int>(ci.image_height);
    const int mw = 8 * hmax, mh = 8 * vmax;
    const int mcus_x = (width + mw - 1) / mw, mcus_y = (height + mh - 1) / mh;

    // The MCUs to keep: columns [c0, c1) as jpeg_crop_scanline aligns them, and the crop's
    // rows [r0, r1), with the MCU row above or below where the upsampler reads into it: a
    // vertically upsampled component interpolates each output row between its own sample
    // row and the one above (even rows) or below (odd rows), which lies in the next MCU row
    // only for the first and the last row of an MCU row. In output pixels an MCU is
    // mws x mhs.
    const int mws = mw / sc, mhs = mh / sc;
    if (region.y < 0 || region.x < 0 || region.h < 1 || region.w < 1 ||
        region.y + region.h > static_cast<int>(ci.output_height) || region.x + region.w > static_cast<int>(ci.output_width))
        return false;
    const int c0 = region.x / mws, c1 = (region.x + region.w + mws - 1) / mws;
    const int last = region.y + region.h - 1;
    // libjpeg upsamples a horizontally subsampled component fancily only if it is more than 2
    // samples wide, judged on the whole image before jpeg_crop_scanline narrows it. A crop 2
    // samples wide keeps the whole image's choice; a file that narrow would not: left to libjpeg.
    const int crop_w = region.x + region.w - c0 * mws;  // libjpeg's cropped output width
    for (int i = 0; i < nc && nc > 1; ++i) {
        const jpeg_component_info* cp = ci.cur_comp_info[i];
        if (cp->h_samp_factor < hmax && (crop_w * cp->h_samp_factor + hmax - 1) / hmax == 2) return false;
    }
    // Components upsampled vertically (4:2:0 chroma at full scale and 1/2; at 1/4 libjpeg
    // scales chroma's IDCT up instead).
    bool vertical_upsampling = false;
    for (int i = 0; i < nc && nc > 1; ++i) {
        const jpeg_component_info* cp = ci.cur_comp_info[i];
        vertical_upsampling |= cp->v_samp_factor * cp->DCT_scaled_size < vmax * ci.min_DCT_scaled_size;
    }
    const bool above = vertical_upsampling && region.y % mhs == 0;
    const bool below = vertical_upsampling && last % mhs == mhs - 1;
    const int r0 = std::max(0, region.y / mhs - (above ? 1 : 0));
    const int r1 = std::min(mcus_y, last / mhs + 1 + (below ? 1 : 0));
    // libjpeg would walk every MCU of rows [0, r1 - 1) (and some of the next for context);
    // not worth a rewrite when the region keeps most of them.
    const int64_t walked = static_cast<int64_t>(std::min(mcus_y, last / mhs + 2)) * mcus_x;
    const int64_t kept = static_cast<int64_t>(r1 - r0) * (c1 - c0);
    if (kept * 10 > walked * 8) return false;

    Comp comps[3];
    for (int i = 0; i < nc; ++i) {
        const jpeg_component_info* cp = ci.cur_comp_info[i];
        const int dt = cp->dc_tbl_no, at = cp->ac_tbl_no;
        if (dt < 0 || dt > 3 || at < 0 || at > 3) return false;
        const JHUFF_TBL* dct = ci.dc_huff_tbl_ptrs[dt];
        comps[i].dc = tables.table(dt, dct);
        comps[i].ac = tables.table(4 + at, ci.ac_huff_tbl_ptrs[at]);
        if (comps[i].dc == nullptr || comps[i].ac == nullptr) return false;
        build_dc_encoder(*dct, comps[i].enc);
        comps[i].blocks = nc == 1 ? 1 : cp->h_samp_factor * cp->v_samp_factor;
    }

    if (!unstuff(scan, end, data) || data.ends.size() != 1) return false;
    const uint64_t scan_bits = static_cast<uint64_t>(data.ends[0]) * 8;
    if (scan_bits >= (uint64_t(1) << 32)) return false;
    const uint8_t* base = data.data.data();
    const uint64_t key = scan_key(ci, scan, end, tables);
    const std::shared_ptr<const EntropyIndex> idx = index_table().find(key);
    const int step = index_step(mcus_x);
    const int per_row = (mcus_x + step - 1) / step;

    // A file the table has no room for is left to libjpeg: without checkpoints every crop
    // of it would walk the scan down to the crop and then decode the crop, costing more.
    if (!idx && !index_table().has_room(sizeof(EntropyIndex) + static_cast<size_t>(mcus_y) * per_row * sizeof(Checkpoint)))
        return false;

    Walker w(base, comps, nc);
    // Each kept row: where its MCU c0 and c1 start, and the DC codes of MCU c0.
    struct FirstDc {
        uint64_t at[3][2];  // start and end bit of each component's first DC code
        int value[3];       // and its DC value
    };
    thread_local std::vector<Place> starts, stops;
    thread_local std::vector<FirstDc> firsts;
    starts.assign(static_cast<size_t>(r1 - r0), Place{});
    stops.assign(static_cast<size_t>(r1 - r0), Place{});
    firsts.resize(static_cast<size_t>(r1 - r0));

    // Rows the table does not cover yet: walked whole from the last one it covers, recording
    // their checkpoints (and, in the kept rows, the places wanted).
    const int indexed = idx ? std::min(idx->rows, r1) : 0;
    if (indexed < r1) {
        auto grown = std::make_shared<EntropyIndex>();
        if (idx) {
            grown->cps = idx->cps;
            grown->rows = idx->rows;
            w.seek(idx->frontier.bit, idx->frontier.pred);
        }
        grown->cps.reserve(static_cast<size_t>(r1) * per_row);
        auto checkpoint = [&] {
            Checkpoint cp{};
            cp.bit = static_cast<uint32_t>(w.b.consumed(base));
            for (int i = 0; i < 3; ++i) cp.pred[i] = static_cast<int16_t>(i < nc ? w.pred[i] : 0);
            return cp;
        };
        for (int r = grown->rows; r < r1; ++r) {
            const bool kept_row = r >= r0;
            for (int mx = 0; mx < mcus_x; ++mx) {
                if (mx % step == 0) grown->cps.push_back(checkpoint());
                if (kept_row && mx == c1) stops[r - r0] = w.here();
                if (kept_row && mx == c0) {
                    starts[r - r0] = w.here();
                    if (!w.mcu(firsts[r - r0].at, firsts[r - r0].value)) return false;
                } else if (!w.mcu()) {
                    return false;
                }
            }
            if (kept_row && c1 == mcus_x) stops[r - r0] = w.here();
            if (static_cast<uint64_t>(w.b.consumed(base)) > scan_bits) return false;
        }
        grown->rows = r1;
        grown->frontier = checkpoint();
        index_table().store(key, std::move(grown));
    }
    // Rows the table covered: from the checkpoint left of each place.
    for (int r = r0; r < indexed; ++r) {
        const Checkpoint* row = idx->cps.data() + static_cast<size_t>(r) * per_row;
        auto walk_to = [&](int col) -> bool {
            w.seek(row[col / step].bit, row[col / step].pred);
            for (int mx = col / step * step; mx < col; ++mx)
                if (!w.mcu()) return false;
            return true;
        };
        if (!walk_to(c0)) return false;
        starts[r - r0] = w.here();
        if (!w.mcu(firsts[r - r0].at, firsts[r - r0].value)) return false;
        if (c1 < mcus_x) {
            if (c1 / step * step > c0 + 1) {
                if (!walk_to(c1)) return false;
            } else {
                for (int mx = c0 + 1; mx < c1; ++mx)
                    if (!w.mcu()) return false;
            }
            stops[r - r0] = w.here();
        } else if (r + 1 < idx->rows) {
            const Checkpoint& next = idx->cps[static_cast<size_t>(r + 1) * per_row];
            w.seek(next.bit, next.pred);
            stops[r - r0] = w.here();
        } else {
            w.seek(idx->frontier.bit, idx->frontier.pred);
            stops[r - r0] = w.here();
        }
        if (stops[r - r0].bit > scan_bits) return false;
    }

    // The new file: the header up to the scan's data, with the frame's size changed.
    const int64_t sof = find_sof(file, scan);
    if (sof < 0 || sof + 9 > scan - file) return false;
    const int new_h = std::min(height, r1 * mh) - r0 * mh;
    // As wide as libjpeg's cropped rows: at 1/sc, `sc` source pixels per output pixel.
    const int new_w = std::min(width - c0 * mw, sc * (region.x + region.w - c0 * mws));
    const size_t header = static_cast<size_t>(scan - file);
    uint64_t kept_bits = 0;
    for (size_t i = 0; i < starts.size(); ++i) kept_bits += stops[i].bit - starts[i].bit + 64;  // + re-encoded DCs
    out.jpeg.resize(header + 2 * (kept_bits / 8 + 8) + 2);  // every byte stuffed, at worst
    std::memcpy(out.jpeg.data(), file, header);
    uint8_t* f = out.jpeg.data() + sof;
    f[5] = static_cast<uint8_t>(new_h >> 8);
    f[6] = static_cast<uint8_t>(new_h);
    f[7] = static_cast<uint8_t>(new_w >> 8);
    f[8] = static_cast<uint8_t>(new_w);

    // Each kept row: its MCUs [c0, c1) as they are, except the first DC difference of each
    // component, re-encoded against the predictor the new scan has there (0 at its start,
    // then the last DC value of the row before).
    BitWriter bw(out.jpeg.data() + header);
    int prev[3] = {0, 0, 0};
    for (int r = r0; r < r1; ++r) {
        const Place& a = starts[r - r0];
        const Place& z = stops[r - r0];
        const FirstDc& first = firsts[r - r0];
        uint64_t at = a.bit;
        for (int i = 0; i < nc; ++i) {
            bw.copy(base, at, first.at[i][0]);
            const int diff = first.value[i] - prev[i];
            const int mag = diff < 0 ? -diff : diff;
            const int size = mag == 0 ? 0 : 32 - __builtin_clz(static_cast<unsigned>(mag));
            if (size > 11 || comps[i].enc.len[size] == 0) return false;  // the table cannot say it
            bw.put(comps[i].enc.code[size], comps[i].enc.len[size]);
            if (size) bw.put(static_cast<uint32_t>(diff < 0 ? diff - 1 : diff), size);
            at = first.at[i][1];
        }
        bw.copy(base, at, z.bit);
        for (int i = 0; i < nc; ++i) prev[i] = z.pred[i];
    }
    uint8_t* e = bw.finish();
    *e++ = 0xFF;
    *e++ = 0xD9;  // EOI
    out.jpeg.resize(static_cast<size_t>(e - out.jpeg.data()));
    out.y = r0 * mhs;
    out.x = c0 * mws;
    return true;
}

}  // namespace pyimgdir
