#include "core/decode_jpeg_eighth.hpp"

#include "core/jpeg_entropy.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include <jpeglib.h>

namespace pyimgdir {
namespace {

using namespace entropy;

constexpr size_t kIndexMinScan = 256 << 10;  // smaller scans are cheap to walk whole for 1/8 and 1/4 crops

// Decodes one block's AC values into `coef` (natural order, zeroed by the caller), marking
// the positions written in `nonzero`. Works on local copies of the reader and the mask: the
// compiler cannot tell that the coefficient stores leave them alone, and would otherwise
// keep them in memory.
inline bool decode_ac(Bits& bits, const Huffman& h, int16_t* coef, uint64_t& nonzero) {
    Bits b = bits;
    uint64_t nz = 0;
    bool ok = true;
    for (int k = 1; k < 64; ++k) {
        if (b.n < 32) b.refill();
        const int32_t e = h.value[b.peek(kValueBits)];
        int v;
        if (e) {  // most coefficients: one lookup
            b.drop(e & 0xFF);
            k += (e >> 8) & 0xFF;
            v = e >> 16;
        } else {
            int rs;
            if (!decode_symbol(b, h, rs)) {
                ok = false;  // no such code: damaged data
                break;
            }
            const int run = rs >> 4, size = rs & 15;
            if (size == 0) {
                if (run != 15) break;  // end of block
                k += 15;
                continue;
            }
            k += run;
            v = extend(static_cast<int>(b.peek(size)), size);
            b.drop(size);
        }
        if (k > 63) {  // libjpeg clamps this; leave damaged data to it
            ok = false;
            break;
        }
        coef[kNatural[k]] = static_cast<int16_t>(v);
        nz |= uint64_t(1) << kNatural[k];
    }
    bits = b;
    nonzero = nz;
    return ok;
}

// The AC positions (natural order) the 2x2 IDCT reads: rows and columns 0, 1, 3, 5, 7.
constexpr uint64_t k2x2Terms = [] {
    uint64_t m = 0;
    const int rc[5] = {0, 1, 3, 5, 7};
    for (int r : rc)
        for (int c : rc)
            if (r || c) m |= uint64_t(1) << (8 * r + c);
    return m;
}();

// libjpeg's post-IDCT range limit: the low 10 bits as a signed value, plus 128, clamped.
inline uint8_t idct_limit(int32_t x) {
    int v = ((x & 1023) ^ 512) - 512;
    v += 128;
    return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v));
}

inline int32_t descale(int64_t x, int n) { return static_cast<int32_t>((x + (int64_t(1) << (n - 1))) >> n); }

// libjpeg-turbo's reduced 2x2 IDCT (jidctred.c), CONST_BITS 13, PASS1_BITS 2: columns and
// rows 0, 1, 3, 5 and 7 of the dequantized block. libjpeg shortcuts columns and rows whose
// odd terms are all zero; the full formula gives the same values there (the rounding
// constant is below the shifted-out bits), so it is used throughout, without branches.
// libjpeg-turbo runs this IDCT in SSE2 with 16-bit products, workspace and saturation, which
// agree with this arithmetic only while every dequantized term and workspace value fits in
// 16 bits and the result lies in [-512, 511]. Otherwise (damaged data only: real images stay
// far inside) this returns false and the file goes to libjpeg.
bool idct_2x2(const int16_t* coef, const int16_t* q, uint8_t* out, size_t stride) {
    constexpr int64_t k0720 = 5906, k0850 = 6967, k1272 = 10426, k3624 = 29692;
    int64_t ws[2][5];
    const int cols[5] = {0, 1, 3, 5, 7};
    bool ok = true;
    auto z = [&](int pos) {
        const int v = coef[pos] * q[pos];
        ok &= v >= -32768 && v <= 32767;
        return static_cast<int64_t>(v);
    };
    for (int i = 0; i < 5; ++i) {
        const int c = cols[i];
        const int64_t t10 = z(c) * 32768;  // << (CONST_BITS + 2)
        const int64_t t0 = -k0720 * z(56 + c) + k0850 * z(40 + c) - k1272 * z(24 + c) + k3624 * z(8 + c);
        ws[0][i] = descale(t10 + t0, 13);
        ws[1][i] = descale(t10 - t0, 13);
        ok &= ws[0][i] >= -32768 && ws[0][i] <= 32767 && ws[1][i] >= -32768 && ws[1][i] <= 32767;
    }
    int32_t v[4];
    for (int r = 0; r < 2; ++r) {
        const int64_t* w = ws[r];
        const int64_t t10 = w[0] * 32768;
        const int64_t t0 = -k0720 * w[4] + k0850 * w[3] - k1272 * w[2] + k3624 * w[1];
        v[2 * r] = descale(t10 + t0, 20);
        v[2 * r + 1] = descale(t10 - t0, 20);
    }
    for (int i = 0; i < 4; ++i) ok &= v[i] >= -512 && v[i] <= 511;
    if (!ok) return false;
    out[0] = idct_limit(v[0]);
    out[1] = idct_limit(v[1]);
    out[stride] = idct_limit(v[2]);
    out[stride + 1] = idct_limit(v[3]);
    return true;
}

// The AC positions (natural order) the 4x4 IDCT reads: rows and columns 0-3 and 5-7.
constexpr uint64_t k4x4Terms = [] {
    uint64_t m = 0;
    for (int r = 0; r < 8; ++r)
        for (int c = 0; c < 8; ++c)
            if (r != 4 && c != 4 && (r || c)) m |= uint64_t(1) << (8 * r + c);
    return m;
}();

// libjpeg-turbo's reduced 4x4 IDCT (jidctred.c), CONST_BITS 13, PASS1_BITS 2: columns and
// rows 0-3 and 5-7 of the dequantized block (row and column 4 do not contribute at this
// size). As for the 2x2 IDCT the full formula is used throughout: libjpeg's shortcut for
// columns without AC terms gives the same values. libjpeg-turbo runs it as
// jsimd_idct_4x4_sse2: 16-bit dequantized terms (pmullw wraps), 32-bit sums of exact
// 16x16-bit products (pmaddwd), a workspace saturated to 16 bits and results saturated to
// [-128, 127]. Its 32-bit sums may wrap on the way, but wrapping cancels when the final
// sum fits, which it does whenever the descaled value fits its 16-bit workspace or
// [-512, 511] (where libjpeg's range-limit table and saturation also agree). So this agrees
// with SSE2 exactly when every dequantized term and workspace value fits in 16 bits and
// every result lies in [-512, 511]; otherwise it returns false and the file goes to libjpeg.
bool idct_4x4(const int16_t* coef, const int16_t* q, uint8_t* out, size_t stride) {
    constexpr int64_t k0211 = 1730, k0509 = 4176, k0601 = 4926, k0765 = 6270, k0899 = 7373, k1061 = 8697,
                      k1451 = 11893, k1847 = 15137, k2172 = 17799, k2562 = 20995;
    constexpr int kUsed[7] = {0, 1, 2, 3, 5, 6, 7};
    bool ok = true;
    // One 1-D pass over seven inputs (index i holds position kUsed[i]), written as four
    // outputs descaled by `n` bits.
    auto pass = [](const int64_t* x, int n, int64_t* o) {
        const int64_t t0 = x[0] * 16384;  // << (CONST_BITS + 1)
        const int64_t t2 = k1847 * x[2] - k0765 * x[5];
        const int64_t t10 = t0 + t2, t12 = t0 - t2;
        const int64_t odd0 = -k0211 * x[6] + k1451 * x[4] - k2172 * x[3] + k1061 * x[1];
        const int64_t odd2 = -k0509 * x[6] - k0601 * x[4] + k0899 * x[3] + k2562 * x[1];
        o[0] = descale(t10 + odd2, n);
        o[1] = descale(t12 + odd0, n);
        o[2] = descale(t12 - odd0, n);
        o[3] = descale(t10 - odd2, n);
    };
    int64_t ws[4][7];  // [output row][column]
    for (int i = 0; i < 7; ++i) {
        const int c = kUsed[i];
        int64_t z[7], o[4];
        for (int j = 0; j < 7; ++j) {
            const int v = coef[8 * kUsed[j] + c] * q[8 * kUsed[j] + c];
            ok &= v >= -32768 && v <= 32767;
            z[j] = v;
        }
        pass(z, 12, o);  // CONST_BITS - PASS1_BITS + 1
        for (int r = 0; r < 4; ++r) {
            ws[r][i] = o[r];
            ok &= o[r] >= -32768 && o[r] <= 32767;
        }
    }
    int64_t v[4][4];
    for (int r = 0; r < 4; ++r) {
        pass(ws[r], 19, v[r]);  // CONST_BITS + PASS1_BITS + 3 + 1
        for (int c = 0; c < 4; ++c) ok &= v[r][c] >= -512 && v[r][c] <= 511;
    }
    if (!ok) return false;
    for (int r = 0; r < 4; ++r)
        for (int c = 0; c < 4; ++c) out[r * stride + c] = idct_limit(static_cast<int32_t>(v[r][c]));
    return true;
}

// The 2x2 or 4x4 IDCT (`n`) when no AC term it reads is set: one value, under the same
// conditions. Both IDCTs turn the dequantized DC term z into 4z in their workspace and then
// into descale(z, 3).
bool idct_dc(int dc, int q0, int n, uint8_t* out, size_t stride) {
    const int z = dc * q0;
    if (z < -8192 || z > 8191) return false;  // z and its workspace value 4z in 16 bits
    const int v = descale(z, 3);
    if (v < -512 || v > 511) return false;
    const uint8_t px = idct_limit(v);
    for (int r = 0; r < n; ++r) std::memset(out + r * stride, px, static_cast<size_t>(n));
    return true;
}

// libjpeg's YCbCr -> RGB tables (jdcolor.c), 16 fractional bits.
struct YccTables {
    int cr_r[256], cb_b[256], cr_g[256], cb_g[256];
    YccTables() {
        auto fix = [](double v) { return static_cast<int32_t>(v * 65536.0 + 0.5); };
        for (int i = 0; i < 256; ++i) {
            const int32_t x = i - 128;
            cr_r[i] = (fix(1.40200) * x + (1 << 15)) >> 16;
            cb_b[i] = (fix(1.77200) * x + (1 << 15)) >> 16;
            cr_g[i] = -fix(0.71414) * x;
            cb_g[i] = -fix(0.34414) * x + (1 << 15);
        }
    }
};

inline uint8_t clamp255(int v) { return static_cast<uint8_t>(v < 0 ? 0 : (v > 255 ? 255 : v)); }

struct Component {
    int index;       // position in the frame (0 = Y or grey)
    int h, v;        // sampling factors
    int scaled;      // IDCT output size per block: 1 (DC only), 2 or 4
    const Huffman* dc;
    const Huffman* ac;
    int16_t q[64];   // quantization table as libjpeg's ISLOW multipliers (short)
    int pred;
    size_t stride;   // plane row length in samples
    uint8_t* plane;
};

struct Scratch {
    Unstuffed scan;              // the entropy-coded data
    std::vector<uint8_t> planes[3];
    TableCache tables;
};

}  // namespace

bool decode_jpeg_eighth(const jpeg_decompress_struct& ci, const uint8_t* scan, const uint8_t* end, int channels,
                        Image& out, const DecodeRegion* region) {
    static const YccTables ycc;
    thread_local Scratch s;

    if (ci.progressive_mode || ci.arith_code || ci.data_precision != 8) return false;
    // 1/8: blocks give 1x1 (DC only) or 2x2 pixels; 1/4: 2x2 or 4x4 (jdmaster.c gives each
    // component the size that spares it upsampling where it can).
    if (ci.scale_num != 1) return false;
    const int ms = ci.min_DCT_scaled_size;
    if (!(ci.scale_denom == 8 && ms == 1) && !(ci.scale_denom == 4 && ms == 2)) return false;
    if (ci.Ss != 0 || ci.Se != 63 || ci.Ah != 0 || ci.Al != 0) return false;
    const int nc = ci.num_components;
    if (ci.comps_in_scan != nc) return false;
    if (nc == 1) {
        if (ci.jpeg_color_space != JCS_GRAYSCALE) return false;
    } else if (nc == 3) {
        if (ci.jpeg_color_space != JCS_YCbCr) return false;
    } else {
        return false;
    }
    if (channels != 1 && channels != 3 && channels != 4) return false;
    if (ci.max_h_samp_factor > 2 || ci.max_v_samp_factor > 2) return false;

    const int width = static_cast<int>(ci.image_width), height = static_cast<int>(ci.image_height);
    const int out_w = static_cast<int>(ci.output_width), out_h = static_cast<int>(ci.output_height);
    if (width <= 0 || height <= 0 || out_w <= 0 || out_h <= 0) return false;
    // One component: one block per MCU whatever its factors (a non-interleaved scan).
    const int hmax = nc == 1 ? 1 : ci.max_h_samp_factor, vmax = nc == 1 ? 1 : ci.max_v_samp_factor;
    const int mcus_x = (width + 8 * hmax - 1) / (8 * hmax), mcus_y = (height + 8 * vmax - 1) / (8 * vmax);
    // Output pixels per MCU.
    const int mcu_w = hmax * ms, mcu_h = vmax * ms;

    Component comps[3];
    for (int i = 0; i < nc; ++i) {
        const jpeg_component_info* cp = ci.cur_comp_info[i];
        Component& c = comps[i];
        c.index = cp->component_index;
        if (c.index < 0 || c.index >= nc) return false;
        c.h = nc == 1 ? 1 : cp->h_samp_factor;
        c.v = nc == 1 ? 1 : cp->v_samp_factor;
        c.scaled = cp->DCT_scaled_size;
        if (c.scaled != 1 && c.scaled != 2 && c.scaled != 4) return false;
        // Output pixels per MCU must be a whole multiple of this component's samples. At 1/8
        // libjpeg replicates samples (it has no fancy upsampling when min_DCT_scaled_size is
        // 1); above that it upsamples fancily, which is left to it.
        if (mcu_w % (c.h * c.scaled) != 0 || mcu_h % (c.v * c.scaled) != 0) return false;
        const int max_up = ms == 1 ? 2 : 1;
        if (mcu_w / (c.h * c.scaled) > max_up || mcu_h / (c.v * c.scaled) > max_up) return false;
        const int dt = cp->dc_tbl_no, at = cp->ac_tbl_no;
        if (dt < 0 || dt > 3 || at < 0 || at > 3) return false;
        c.dc = s.tables.table(dt, ci.dc_huff_tbl_ptrs[dt]);
        c.ac = s.tables.table(4 + at, ci.ac_huff_tbl_ptrs[at]);
        if (c.dc == nullptr || c.ac == nullptr) return false;
        const int qt = cp->quant_tbl_no;
        if (qt < 0 || qt >= NUM_QUANT_TBLS || ci.quant_tbl_ptrs[qt] == nullptr) return false;
        for (int k = 0; k < 64; ++k) c.q[k] = static_cast<int16_t>(ci.quant_tbl_ptrs[qt]->quantval[k]);
        c.pred = 0;
        c.stride = static_cast<size_t>(mcus_x) * c.h * c.scaled;
        s.planes[i].resize(c.stride * static_cast<size_t>(mcus_y) * c.v * c.scaled);
        c.plane = s.planes[i].data();
    }
    for (int i = 0; i < nc; ++i)
        for (int j = 0; j < i; ++j)
            if (comps[i].index == comps[j].index) return false;

    // The output rows and columns to produce.
    int ry = 0, rx = 0, rh = out_h, rw = out_w;
    if (region) {
        ry = region->y;
        rx = region->x;
        rh = region->h;
        rw = region->w;
        if (ry < 0 || rx < 0 || rh < 1 || rw < 1 || ry + rh > out_h || rx + rw > out_w) return false;
    }
    if (!unstuff(scan, end, s.scan)) return false;
    const int64_t all = static_cast<int64_t>(mcus_x) * mcus_y;
    const int64_t interval = ci.restart_interval > 0 ? ci.restart_interval : all;
    if (static_cast<int64_t>(s.scan.ends.size()) != (all + interval - 1) / interval) return false;
    // Each MCU row gives mcu_h output rows; the rows below the region are not decoded.
    const int64_t total = std::min<int64_t>(all, static_cast<int64_t>((ry + rh + mcu_h - 1) / mcu_h) * mcus_x);
    const int mcu_y0 = ry / mcu_h, mcu_x0 = rx / mcu_w, mcu_x1 = (rx + rw - 1) / mcu_w;

    const uint8_t* base = s.scan.data.data();
    size_t seg = 0, seg_start = 0;
    Bits b(base);
    int16_t coef[64] = {};

    // One MCU: the DC predictors always advance; outside the region (`wanted` false) the AC
    // codes are only walked. An MCU gives mcu_w x mcu_h output pixels and nothing else
    // (replication or no upsampling), so outside the region only the predictors and the bit
    // position matter.
    auto decode_mcu = [&](int mx, int my, bool wanted) -> bool {
        for (int i = 0; i < nc; ++i) {
            Component& c = comps[i];
            for (int by = 0; by < c.v; ++by)
                for (int bx = 0; bx < c.h; ++bx) {
                    if (b.n < 32) b.refill();
                    int sz;
                    if (!decode_symbol(b, *c.dc, sz)) return false;
                    if (sz) {
                        const int v = static_cast<int>(b.peek(sz));
                        b.drop(sz);
                        const int diff = extend(v, sz);
                        // libjpeg refuses a DC value that overflows an int.
                        if ((c.pred >= 0 && diff > INT_MAX - c.pred) || (c.pred < 0 && diff < INT_MIN - c.pred))
                            return false;
                        c.pred += diff;
                    }
                    if (!wanted) {
                        if (!skip_ac(b, *c.ac)) return false;
                        continue;
                    }
                    const size_t y0 = (static_cast<size_t>(my) * c.v + by) * c.scaled;
                    const size_t x0 = (static_cast<size_t>(mx) * c.h + bx) * c.scaled;
                    uint8_t* o = c.plane + y0 * c.stride + x0;
                    if (c.scaled == 1) {
                        if (!skip_ac(b, *c.ac)) return false;
                        const int dc = static_cast<int16_t>(c.pred) * c.q[0];
                        *o = idct_limit(descale(dc, 3));
                    } else {
                        uint64_t nonzero = 0;
                        if (!decode_ac(b, *c.ac, coef, nonzero)) return false;
                        coef[0] = static_cast<int16_t>(c.pred);
                        const uint64_t terms = c.scaled == 2 ? k2x2Terms : k4x4Terms;
                        const bool done = (nonzero & terms) == 0 ? idct_dc(coef[0], c.q[0], c.scaled, o, c.stride)
                                          : c.scaled == 2 ? idct_2x2(coef, c.q, o, c.stride)
                                                          : idct_4x4(coef, c.q, o, c.stride);
                        for (; nonzero; nonzero &= nonzero - 1) coef[__builtin_ctzll(nonzero)] = 0;
                        if (!done) return false;
                    }
                }
        }
        // Damaged data can read into the padding; one MCU never reads past it.
        return b.p <= base + s.scan.ends[seg] + kPad / 2;
    };

    const size_t scan_bits = s.scan.ends[0] * 8;
    const bool use_index = region != nullptr && ci.restart_interval == 0 && index_budget() > 0 &&
                           static_cast<size_t>(end - scan) >= kIndexMinScan && scan_bits < (uint64_t(1) << 32);
    const int kIndexStep = index_step(mcus_x);
    if (use_index) {
        const uint64_t key = scan_key(ci, scan, end, s.tables);
        const std::shared_ptr<const EntropyIndex> idx = index_table().find(key);
        const int per_row = (mcus_x + kIndexStep - 1) / kIndexStep;
        const int rows_end = static_cast<int>((total + mcus_x - 1) / mcus_x);  // MCU rows the region needs
        auto seek = [&](const Checkpoint& cp) {
            b = Bits(base + cp.bit / 8);
            b.refill();
            b.drop(static_cast<int>(cp.bit % 8));
            for (int i = 0; i < nc; ++i) comps[i].pred = cp.pred[i];
        };
        bool recordable = true;  // false once a predictor leaves 16 bits (damaged data only)
        auto here = [&]() {
            Checkpoint cp;
            cp.bit = static_cast<uint32_t>(b.consumed(base));
            for (int i = 0; i < 3; ++i) {
                const int p = i < nc ? comps[i].pred : 0;
                recordable &= p >= INT16_MIN && p <= INT16_MAX;
                cp.pred[i] = static_cast<int16_t>(p);
            }
            return cp;
        };
        int row = mcu_y0;
        if (idx) {
            // Rows already indexed: from the checkpoint left of the region to its right edge.
            const int k = mcu_x0 / kIndexStep;
            for (; row < std::min(idx->rows, rows_end); ++row) {
                seek(idx->cps[static_cast<size_t>(row) * per_row + k]);
                for (int mx = k * kIndexStep; mx <= mcu_x1; ++mx)
                    if (!decode_mcu(mx, row, mx >= mcu_x0)) return false;
                if (b.consumed(base) > static_cast<int64_t>(scan_bits)) return false;
            }
        }
        if (row < rows_end) {
            // The rest: whole rows from the first one not indexed, recording checkpoints.
            auto grown = std::make_shared<EntropyIndex>();
            if (idx) {
                grown->cps = idx->cps;
                grown->rows = idx->rows;
                seek(idx->frontier);
            }
            grown->cps.reserve(static_cast<size_t>(rows_end) * per_row);
            for (int r = grown->rows; r < rows_end; ++r) {
                for (int mx = 0; mx < mcus_x; ++mx) {
                    if (mx % kIndexStep == 0) grown->cps.push_back(here());
                    if (!decode_mcu(mx, r, r >= mcu_y0 && mx >= mcu_x0 && mx <= mcu_x1)) return false;
                }
                if (b.consumed(base) > static_cast<int64_t>(scan_bits)) return false;
            }
            grown->rows = rows_end;
            grown->frontier = here();
            if (recordable) index_table().store(key, std::move(grown));
        }
    } else {
        // With restart markers a region needs only the restart segments that hold one of its
        // MCUs: each starts byte-aligned with its DC predictors reset, so the others are
        // skipped without being decoded (phone cameras often write a marker every MCU row).
        const bool skip_segments = region != nullptr && ci.restart_interval > 0;
        auto segment_wanted = [&](int64_t m0) {
            const int64_t m1 = std::min(m0 + interval, total) - 1;
            for (int64_t r = std::max<int64_t>(m0 / mcus_x, mcu_y0); r <= m1 / mcus_x; ++r) {
                const int64_t c0 = r == m0 / mcus_x ? m0 % mcus_x : 0;
                const int64_t c1 = r == m1 / mcus_x ? m1 % mcus_x : mcus_x - 1;
                if (c1 >= mcu_x0 && c0 <= mcu_x1) return true;
            }
            return false;
        };
        int64_t m = 0;
        auto enter_segment = [&](int64_t first) {
            seg = static_cast<size_t>(first / interval);
            seg_start = seg ? s.scan.ends[seg - 1] : 0;
            b = Bits(base + seg_start);
            for (int i = 0; i < nc; ++i) comps[i].pred = 0;
        };
        if (skip_segments) {
            while (m < total && !segment_wanted(m)) m += interval;
            if (m > 0) enter_segment(m);
        }
        for (; m < total; ++m) {
            if (m > 0 && m % interval == 0) {
                if (b.consumed(base + seg_start) > static_cast<int64_t>(s.scan.ends[seg] - seg_start) * 8) return false;
                if (skip_segments)
                    while (m < total && !segment_wanted(m)) m += interval;
                if (m >= total) break;
                enter_segment(m);
            }
            const int mx = static_cast<int>(m % mcus_x), my = static_cast<int>(m / mcus_x);
            if (!decode_mcu(mx, my, my >= mcu_y0 && mx >= mcu_x0 && mx <= mcu_x1)) return false;
        }
        if (b.consumed(base + seg_start) > static_cast<int64_t>(s.scan.ends[seg] - seg_start) * 8) return false;
    }

    // Upsample by replication (only at 1/8, where libjpeg skips fancy upsampling) and
    // convert colour.
    out.reset(rh, rw, channels);
    const Component* yc = nullptr;
    const Component* cb = nullptr;
    const Component* cr = nullptr;
    for (int i = 0; i < nc; ++i) {
        if (comps[i].index == 0) yc = &comps[i];
        if (comps[i].index == 1) cb = &comps[i];
        if (comps[i].index == 2) cr = &comps[i];
    }
    // Replication factors are 1 or 2 (checked above): shifts.
    auto shift = [&](const Component* c, bool horizontal) {
        return horizontal ? (mcu_w / (c->h * c->scaled)) >> 1 : (mcu_h / (c->v * c->scaled)) >> 1;
    };
    const int ysx = shift(yc, true), ysy = shift(yc, false);
    for (int oy = 0; oy < rh; ++oy) {
        const int y = oy + ry;
        uint8_t* o = out.data() + static_cast<size_t>(oy) * rw * channels;
        const uint8_t* yrow = yc->plane + static_cast<size_t>(y >> ysy) * yc->stride;
        if (nc == 1 || channels == 1) {
            for (int i = 0; i < rw; ++i) {
                const uint8_t g = yrow[(i + rx) >> ysx];
                for (int k = 0; k < std::min(channels, 3); ++k) o[i * channels + k] = g;
                if (channels == 4) o[i * 4 + 3] = 255;
            }
            continue;
        }
        const int bsx = shift(cb, true), rsx = shift(cr, true);
        const uint8_t* brow = cb->plane + static_cast<size_t>(y >> shift(cb, false)) * cb->stride;
        const uint8_t* rrow = cr->plane + static_cast<size_t>(y >> shift(cr, false)) * cr->stride;
        for (int i = 0; i < rw; ++i) {
            const int x = i + rx;
            const int yy = yrow[x >> ysx], u = brow[x >> bsx], v = rrow[x >> rsx];
            o[i * channels] = clamp255(yy + ycc.cr_r[v]);
            o[i * channels + 1] = clamp255(yy + ((ycc.cb_g[u] + ycc.cr_g[v]) >> 16));
            o[i * channels + 2] = clamp255(yy + ycc.cb_b[u]);
            if (channels == 4) o[i * 4 + 3] = 255;
        }
    }
    return true;
}

}  // namespace pyimgdir
