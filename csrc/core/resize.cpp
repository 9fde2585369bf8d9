#include "core/resize.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif
#if defined(__GNUC__) && defined(__x86_64__) && !defined(PYIMGDIR_NO_CLONES)
#include <immintrin.h>
#endif

namespace pyimgdir {

Interpolation parse_interpolation(const std::string& name) {
    if (name == "bilinear") return Interpolation::Bilinear;
    if (name == "nearest") return Interpolation::Nearest;
    if (name == "bicubic") return Interpolation::Bicubic;
    if (name == "area") return Interpolation::Area;
    if (name == "lanczos3") return Interpolation::Lanczos3;
    if (name == "lanczos5") return Interpolation::Lanczos5;
    if (name == "gaussian") return Interpolation::Gaussian;
    if (name == "mitchellcubic") return Interpolation::MitchellCubic;
    throw std::invalid_argument("unknown interpolation: " + name);
}

namespace {

// TensorFlow's ResizeBilinear (half_pixel_centers=True) in float32, operation for operation:
// in = (i + 0.5f) * scale - 0.5f; lower = max(floor(in), 0); upper = min(ceil(in), n - 1).
struct Tap {
    int lo, hi;
    float t;
};

std::vector<Tap> bilinear_taps(int in, int out) {
    std::vector<Tap> taps(static_cast<size_t>(out));
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (int i = 0; i < out; ++i) {
        const float x = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
        const float xf = std::floor(x);
        taps[i].lo = std::max(static_cast<int>(xf), 0);
        taps[i].hi = std::min(static_cast<int>(std::ceil(x)), in - 1);
        taps[i].t = x - xf;
    }
    return taps;
}

// One source row, horizontally: out = l + (r - l) * t per output pixel and channel, the
// float operations TF does, in its order (so the result is bit-identical). lo/hi are the
// element offsets of each output pixel's two taps in the row, t its weight.
struct RowTaps {
    std::vector<int32_t> lo, hi;
    std::vector<float> t;
    // For the pass that reads bytes directly (bilinear_row_bytes): the weight with 0 where
    // both taps are the same pixel (at the clamped edges), so the right tap can always be
    // read at lo + c (l + (r - l) * 0 == l exactly, r being a finite byte value), and the
    // output pixels [direct_begin, direct_end) whose 4-byte reads at lo and lo + c stay in
    // the row (the others take a scalar loop).
    std::vector<float> t_same0;
    std::vector<float> t_quad;  // t_same0 of each pixel repeated 4 times (AVX2 pass: 2 pixels per load)
    int direct_begin = 0, direct_end = 0;
    bool direct = false;  // read bytes directly instead of widening the row to float first
};

// mirrored: output pixel x gets the taps (and so the value) of pixel ow - 1 - x, which is
// how a horizontal flip after the resize is written in the same pass.
RowTaps row_taps(int w, int ow, int c, bool mirrored) {
    RowTaps r;
    r.lo.resize(static_cast<size_t>(ow));
    r.hi.resize(static_cast<size_t>(ow));
    r.t.resize(static_cast<size_t>(ow));
    r.t_same0.resize(static_cast<size_t>(ow));
    r.t_quad.resize(static_cast<size_t>(ow) * 4);
    const auto xs = bilinear_taps(w, ow);
    const int64_t len = static_cast<int64_t>(w) * c;
    int safe = 0;  // leading pixels (in unmirrored order) whose 4-byte reads stay in the row
    for (int i = 0; i < ow; ++i) {
        const int x = mirrored ? ow - 1 - i : i;
        r.lo[x] = xs[i].lo * c;
        r.hi[x] = xs[i].hi * c;
        r.t[x] = xs[i].t;
        r.t_same0[x] = xs[i].lo == xs[i].hi ? 0.0f : xs[i].t;
        for (int k = 0; k < 4; ++k) r.t_quad[4 * static_cast<size_t>(x) + k] = r.t_same0[x];
        const bool ok = static_cast<int64_t>(r.lo[x]) + c + 4 <= len &&
                        (xs[i].hi == xs[i].lo || xs[i].hi == xs[i].lo + 1);
        if (ok && safe == i) safe = i + 1;
    }
    r.direct_begin = mirrored ? ow - safe : 0;
    r.direct_end = mirrored ? ow : safe;
    // SSE2: widening costs about one operation per source value, converting at the taps
    // about four per output pixel: read bytes directly when the row shrinks by 1.5x or more.
    // (The AVX2 pass converts two pixels' taps per operation and reads bytes at any ratio.)
    r.direct = (c == 3 || c == 4) && 2 * static_cast<int64_t>(w) >= 3 * static_cast<int64_t>(ow);
    return r;
}

// Loops the compiler vectorises are compiled twice: PYIMGDIR_BODY marks the body (always
// inlined), PYIMGDIR_TWO_VERSIONS(name, params, args) defines `name`, which runs the body
// compiled for AVX2 when cpu_has_avx2() says so and the baseline (SSE2) build otherwise.
// One run-time switch for these and the hand-written *_avx2 passes: PYIMGDIR_NO_AVX2=1 turns
// both off, so the versions a CPU without AVX2 runs can be tested on any machine.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && !defined(PYIMGDIR_NO_CLONES)
bool cpu_has_avx2();
#define PYIMGDIR_BODY inline __attribute__((always_inline))
#define PYIMGDIR_TWO_VERSIONS(name, params, args)                                              \
    __attribute__((target("avx2"), noinline)) void name##_avx2_build params { name##_body args; } \
    __attribute__((noinline)) void name params {                                              \
        if (cpu_has_avx2()) return name##_avx2_build args;                                    \
        name##_body args;                                                                     \
    }
#else
#define PYIMGDIR_BODY inline
#define PYIMGDIR_TWO_VERSIONS(name, params, args) \
    void name params { name##_body args; }
#endif

template <int C>
void bilinear_row_c(const uint8_t* __restrict s, const int32_t* __restrict lo,
                    const int32_t* __restrict hi, const float* __restrict t, float* __restrict out,
                    int ow, int c_rt) {
    const int c = C > 0 ? C : c_rt;
    for (int x = 0; x < ow; ++x) {
        const uint8_t* a = s + lo[x];
        const uint8_t* b = s + hi[x];
        const float tt = t[x];
        float* o = out + static_cast<size_t>(x) * c;
        for (int k = 0; k < c; ++k) {
            const float l = static_cast<float>(a[k]);
            o[k] = l + (static_cast<float>(b[k]) - l) * tt;
        }
    }
}

#if defined(__SSE2__)
#define PYIMGDIR_SSE_ROWS 1
// 3 or 4 channels with SSE2: widen the row to float once (`wide`, len + 1 floats), then per
// output pixel one 4-lane load at each tap and the same three float operations. With 3
// channels the fourth lane is the next pixel's first channel; the next store overwrites its
// result, and the row buffer has one float of slack for the last pixel.
PYIMGDIR_BODY void bilinear_row_sse_body(const uint8_t* __restrict s, int len, const RowTaps& taps, int ow, int c,
                                         float* __restrict wide, float* __restrict out) {
    for (int i = 0; i < len; ++i) wide[i] = static_cast<float>(s[i]);
    wide[len] = 0.0f;
    const int32_t* lo = taps.lo.data();
    const int32_t* hi = taps.hi.data();
    const float* t = taps.t.data();
    for (int x = 0; x < ow; ++x) {
        const __m128 l = _mm_loadu_ps(wide + lo[x]);
        const __m128 r = _mm_loadu_ps(wide + hi[x]);
        const __m128 d = _mm_mul_ps(_mm_sub_ps(r, l), _mm_set1_ps(t[x]));
        _mm_storeu_ps(out + static_cast<size_t>(x) * c, _mm_add_ps(l, d));
    }
}
PYIMGDIR_TWO_VERSIONS(bilinear_row_sse,
                      (const uint8_t* __restrict s, int len, const RowTaps& taps, int ow, int c,
                       float* __restrict wide, float* __restrict out),
                      (s, len, taps, ow, c, wide, out))
#endif

#ifdef PYIMGDIR_SSE_ROWS
// Output pixels [from, to) of a byte-reading bilinear row, one channel at a time: the pixels
// whose 4-byte loads would leave the row (and the odd last one of the AVX2 pairs).
inline void bilinear_row_bytes_tail(const uint8_t* __restrict s, const RowTaps& taps, int from, int to, int c,
                                    float* __restrict out) {
    const int32_t* lo = taps.lo.data();
    const int32_t* hi = taps.hi.data();
    const float* tt = taps.t.data();
    for (int x = from; x < to; ++x) {
        const uint8_t* a = s + lo[x];
        const uint8_t* b = s + hi[x];
        float* o = out + static_cast<size_t>(x) * c;
        for (int k = 0; k < c; ++k) {
            const float l = static_cast<float>(a[k]);
            o[k] = l + (static_cast<float>(b[k]) - l) * tt[x];
        }
    }
}

// 3 or 4 channels, shrinking rows: no widening pass; each tap's four bytes are loaded and
// converted where they are used (for 3 channels the fourth byte is the next pixel's first
// channel: its result is overwritten by the next store, as in bilinear_row_sse). The same
// three float operations per value as TF. Pixels outside [direct_begin, direct_end) (whose
// loads would leave the row) take the scalar loop: those before first, those after last, so
// every spilled lane is overwritten.
PYIMGDIR_BODY void bilinear_row_bytes_body(const uint8_t* __restrict s, const RowTaps& taps, int ow, int c,
                                           float* __restrict out) {
    const int32_t* lo = taps.lo.data();
    const float* t = taps.t_same0.data();
    const __m128i zero = _mm_setzero_si128();
    auto px = [&](const uint8_t* p) {
        int32_t v;
        std::memcpy(&v, p, 4);
        const __m128i b = _mm_cvtsi32_si128(v);
        return _mm_cvtepi32_ps(_mm_unpacklo_epi16(_mm_unpacklo_epi8(b, zero), zero));
    };
    bilinear_row_bytes_tail(s, taps, 0, taps.direct_begin, c, out);
    for (int x = taps.direct_begin; x < taps.direct_end; ++x) {
        const uint8_t* a = s + lo[x];
        const __m128 l = px(a);
        const __m128 r = px(a + c);
        const __m128 d = _mm_mul_ps(_mm_sub_ps(r, l), _mm_set1_ps(t[x]));
        _mm_storeu_ps(out + static_cast<size_t>(x) * c, _mm_add_ps(l, d));
    }
    bilinear_row_bytes_tail(s, taps, taps.direct_end, ow, c, out);
}
PYIMGDIR_TWO_VERSIONS(bilinear_row_bytes,
                      (const uint8_t* __restrict s, const RowTaps& taps, int ow, int c, float* __restrict out),
                      (s, taps, ow, c, out))
#endif

#if defined(__GNUC__) && defined(__x86_64__) && !defined(PYIMGDIR_NO_CLONES)
#define PYIMGDIR_AVX2_ROWS 1
// The same with AVX2, two output pixels per 8-lane register: both pixels' taps are loaded
// (4 bytes each) into one register, widened and converted together, blended with the
// pixels' weights, and for 3 channels compacted to 6 consecutive values before one store
// (8 lanes written; the 2 extra are overwritten by the next store, and `out` has slack).
// Chosen at run time on CPUs with AVX2; the build stays portable.
__attribute__((target("avx2"))) void bilinear_row_bytes_avx2(const uint8_t* __restrict s, const RowTaps& taps,
                                                             int ow, int c, float* __restrict out) {
    const int32_t* lo = taps.lo.data();
    const float* tq = taps.t_quad.data();
    const int b = taps.direct_begin;
    const int n = b + ((taps.direct_end - b) & ~1);
    const __m256i pack3 = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 7, 7);
    auto load4 = [](const uint8_t* p) {
        int32_t v;
        std::memcpy(&v, p, 4);
        return v;
    };
    bilinear_row_bytes_tail(s, taps, 0, b, c, out);
    int x = b;
    for (; x < n; x += 2) {
        const uint8_t* a0 = s + lo[x];
        const uint8_t* a1 = s + lo[x + 1];
        const __m128i lb = _mm_insert_epi32(_mm_cvtsi32_si128(load4(a0)), load4(a1), 1);
        const __m128i rb = _mm_insert_epi32(_mm_cvtsi32_si128(load4(a0 + c)), load4(a1 + c), 1);
        const __m256 l = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lb));
        const __m256 r = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(rb));
        __m256 v = _mm256_add_ps(l, _mm256_mul_ps(_mm256_sub_ps(r, l), _mm256_loadu_ps(tq + 4 * x)));
        if (c == 3) v = _mm256_permutevar8x32_ps(v, pack3);
        _mm256_storeu_ps(out + static_cast<size_t>(x) * c, v);
    }
    bilinear_row_bytes_tail(s, taps, x, ow, c, out);
}

// PYIMGDIR_NO_AVX2=1 forces the SSE2 passes and the baseline versions of the functions
// PYIMGDIR_TWO_VERSIONS compiles twice (tests compare the two).
bool cpu_has_avx2() {
    static const bool yes = [] {
        const char* off = std::getenv("PYIMGDIR_NO_AVX2");
        if (off && *off && *off != '0') return false;
        return __builtin_cpu_supports("avx2") != 0;
    }();
    return yes;
}
#endif

void bilinear_row(const uint8_t* s, int w, const RowTaps& taps, int ow, int c, float* wide, float* out) {
#ifdef PYIMGDIR_AVX2_ROWS
    if ((c == 3 || c == 4) && cpu_has_avx2()) return bilinear_row_bytes_avx2(s, taps, ow, c, out);
#endif
#ifdef PYIMGDIR_SSE_ROWS
    if (taps.direct) return bilinear_row_bytes(s, taps, ow, c, out);
    if (c == 3 || c == 4) return bilinear_row_sse(s, w * c, taps, ow, c, wide, out);
#else
    (void)w;
    (void)wide;
#endif
    const int32_t* lo = taps.lo.data();
    const int32_t* hi = taps.hi.data();
    const float* t = taps.t.data();
    switch (c) {
        case 1: return bilinear_row_c<1>(s, lo, hi, t, out, ow, c);
        case 3: return bilinear_row_c<3>(s, lo, hi, t, out, ow, c);
        case 4: return bilinear_row_c<4>(s, lo, hi, t, out, ow, c);
        default: return bilinear_row_c<0>(s, lo, hi, t, out, ow, c);
    }
}

PYIMGDIR_BODY void bilinear_lerp_body(const float* __restrict top, const float* __restrict bot, float t,
                                      float* __restrict out, int n) {
    for (int j = 0; j < n; ++j) out[j] = top[j] + (bot[j] - top[j]) * t;
}
PYIMGDIR_TWO_VERSIONS(bilinear_lerp,
                      (const float* __restrict top, const float* __restrict bot, float t, float* __restrict out, int n),
                      (top, bot, t, out, n))

#ifdef PYIMGDIR_SSE_ROWS
// The same with non-temporal stores, for outputs too big to stay in cache until they are
// read: writing around the cache saves reading each destination line first. The caller
// issues _mm_sfence() after the last row.
PYIMGDIR_BODY void bilinear_lerp_stream_body(const float* __restrict top, const float* __restrict bot, float t,
                                             float* __restrict out, int n) {
    int j = 0;
    for (; j < n && (reinterpret_cast<uintptr_t>(out + j) & 15) != 0; ++j)
        out[j] = top[j] + (bot[j] - top[j]) * t;
    const __m128 tt = _mm_set1_ps(t);
    for (; j + 4 <= n; j += 4) {
        const __m128 a = _mm_loadu_ps(top + j);
        const __m128 d = _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(bot + j), a), tt);
        _mm_stream_ps(out + j, _mm_add_ps(a, d));
    }
    for (; j < n; ++j) out[j] = top[j] + (bot[j] - top[j]) * t;
}
PYIMGDIR_TWO_VERSIONS(bilinear_lerp_stream,
                      (const float* __restrict top, const float* __restrict bot, float t, float* __restrict out, int n),
                      (top, bot, t, out, n))
#endif

PYIMGDIR_BODY void bilinear_lerp_u8_body(const float* __restrict top, const float* __restrict bot, float t,
                                         uint8_t* __restrict out, int n) {
    int j = 0;
#ifdef PYIMGDIR_SSE_ROWS
    // round_to_u8 16 values at a time (the compiler does not vectorise the conversion):
    // clamp, add 0.5, truncate, pack; the same float operations, so the same bytes.
    const __m128 tt = _mm_set1_ps(t), lo = _mm_setzero_ps(), hi = _mm_set1_ps(255.0f), half = _mm_set1_ps(0.5f);
    auto one = [&](int k) {
        const __m128 a = _mm_loadu_ps(top + k);
        __m128 v = _mm_add_ps(a, _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(bot + k), a), tt));
        v = _mm_min_ps(_mm_max_ps(v, lo), hi);
        return _mm_cvttps_epi32(_mm_add_ps(v, half));
    };
    for (; j + 16 <= n; j += 16) {
        const __m128i w0 = _mm_packs_epi32(one(j), one(j + 4));
        const __m128i w1 = _mm_packs_epi32(one(j + 8), one(j + 12));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + j), _mm_packus_epi16(w0, w1));
    }
#endif
    for (; j < n; ++j) out[j] = round_to_u8(top[j] + (bot[j] - top[j]) * t);
}
PYIMGDIR_TWO_VERSIONS(bilinear_lerp_u8,
                      (const float* __restrict top, const float* __restrict bot, float t, uint8_t* __restrict out, int n),
                      (top, bot, t, out, n))

// Channels-first output: the vertical blend of one row, written as `c` plane rows (channel k
// of pixel x to out[k * plane + x]) instead of interleaved. The same float operations per
// value as bilinear_lerp, so the same values; only where they are stored differs.
void bilinear_lerp_planar(const float* __restrict top, const float* __restrict bot, float t,
                          float* __restrict out, int ow, int c, size_t plane, bool stream) {
    int x = 0;
#ifdef PYIMGDIR_SSE_ROWS
    if (c == 3) {
        // 4 pixels (12 values) at a time: blend, then shuffle RGBRGBRGBRGB into RRRR GGGG BBBB
        // (pure data movement). Non-temporal stores where the plane rows are 16-byte aligned.
        float* o0 = out;
        float* o1 = out + plane;
        float* o2 = out + 2 * plane;
        const bool nt = stream && ((reinterpret_cast<uintptr_t>(o0) | reinterpret_cast<uintptr_t>(o1) |
                                    reinterpret_cast<uintptr_t>(o2)) & 15) == 0;
        const __m128 tt = _mm_set1_ps(t);
        auto blend = [&](int k) {
            const __m128 a = _mm_loadu_ps(top + k);
            return _mm_add_ps(a, _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(bot + k), a), tt));
        };
        for (; x + 4 <= ow; x += 4) {
            const __m128 a = blend(3 * x), b = blend(3 * x + 4), cc = blend(3 * x + 8);
            // a = r0 g0 b0 r1, b = g1 b1 r2 g2, cc = b2 r3 g3 b3
            const __m128 r = _mm_shuffle_ps(a, _mm_shuffle_ps(b, cc, _MM_SHUFFLE(1, 1, 2, 2)), _MM_SHUFFLE(2, 0, 3, 0));
            const __m128 g = _mm_shuffle_ps(_mm_shuffle_ps(a, b, _MM_SHUFFLE(0, 0, 1, 1)),
                                            _mm_shuffle_ps(b, cc, _MM_SHUFFLE(2, 2, 3, 3)), _MM_SHUFFLE(2, 0, 2, 0));
            const __m128 bl = _mm_shuffle_ps(_mm_shuffle_ps(a, b, _MM_SHUFFLE(1, 1, 2, 2)),
                                             _mm_shuffle_ps(cc, cc, _MM_SHUFFLE(3, 3, 0, 0)), _MM_SHUFFLE(2, 0, 2, 0));
            if (nt) {
                _mm_stream_ps(o0 + x, r);
                _mm_stream_ps(o1 + x, g);
                _mm_stream_ps(o2 + x, bl);
            } else {
                _mm_storeu_ps(o0 + x, r);
                _mm_storeu_ps(o1 + x, g);
                _mm_storeu_ps(o2 + x, bl);
            }
        }
    }
#else
    (void)stream;
#endif
    for (; x < ow; ++x)
        for (int k = 0; k < c; ++k) {
            const size_t j = static_cast<size_t>(x) * c + k;
            out[k * plane + x] = top[j] + (bot[j] - top[j]) * t;
        }
}

#ifdef PYIMGDIR_AVX2_ROWS
// bilinear_lerp_stream with AVX2, 8 values per non-temporal store.
__attribute__((target("avx2"))) void bilinear_lerp_stream_avx2(const float* __restrict top,
                                                               const float* __restrict bot, float t,
                                                               float* __restrict out, int n) {
    int j = 0;
    for (; j < n && (reinterpret_cast<uintptr_t>(out + j) & 15) != 0; ++j)
        out[j] = top[j] + (bot[j] - top[j]) * t;
    const __m128 t4 = _mm_set1_ps(t);
    auto four = [&](int k) {  // 16-byte aligned
        const __m128 a = _mm_loadu_ps(top + k);
        _mm_stream_ps(out + k, _mm_add_ps(a, _mm_mul_ps(_mm_sub_ps(_mm_loadu_ps(bot + k), a), t4)));
    };
    if (j + 4 <= n && (reinterpret_cast<uintptr_t>(out + j) & 31) != 0) {
        four(j);
        j += 4;
    }
    const __m256 tt = _mm256_set1_ps(t);
    for (; j + 8 <= n; j += 8) {
        const __m256 a = _mm256_loadu_ps(top + j);
        const __m256 d = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(bot + j), a), tt);
        _mm256_stream_ps(out + j, _mm256_add_ps(a, d));
    }
    if (j + 4 <= n) {
        four(j);
        j += 4;
    }
    for (; j < n; ++j) out[j] = top[j] + (bot[j] - top[j]) * t;
}

// bilinear_lerp_u8 with AVX2, 32 values at a time. No clamping: every value blended here is
// between two values that are each between two bytes (l + (r - l) * t with t in [0, 1] stays
// within [min(l, r), max(l, r)] under float rounding, which is monotonic), so it is already
// in [0, 255] and round_to_u8's clamps change nothing; truncating v + 0.5 (v >= 0) then
// gives round_to_u8's byte. The tail uses round_to_u8 itself.
__attribute__((target("avx2"))) inline __m256i lerp_round8(const float* top, const float* bot, __m256 tt) {
    const __m256 a = _mm256_loadu_ps(top);
    const __m256 v = _mm256_add_ps(a, _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(bot), a), tt));
    return _mm256_cvttps_epi32(_mm256_add_ps(v, _mm256_set1_ps(0.5f)));
}

__attribute__((target("avx2"))) void bilinear_lerp_u8_avx2(const float* __restrict top, const float* __restrict bot,
                                                           float t, uint8_t* __restrict out, int n) {
    const __m256 tt = _mm256_set1_ps(t);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    int j = 0;
    for (; j + 32 <= n; j += 32) {
        // packs work within each 128-bit lane; the permute restores the order
        const __m256i w01 = _mm256_packs_epi32(lerp_round8(top + j, bot + j, tt), lerp_round8(top + j + 8, bot + j + 8, tt));
        const __m256i w23 = _mm256_packs_epi32(lerp_round8(top + j + 16, bot + j + 16, tt),
                                               lerp_round8(top + j + 24, bot + j + 24, tt));
        const __m256i b = _mm256_permutevar8x32_epi32(_mm256_packus_epi16(w01, w23), order);
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + j), b);
    }
    for (; j < n; ++j) out[j] = round_to_u8(top[j] + (bot[j] - top[j]) * t);
}
#endif

void lerp_u8(const float* top, const float* bot, float t, uint8_t* out, int n) {
#ifdef PYIMGDIR_AVX2_ROWS
    if (cpu_has_avx2()) return bilinear_lerp_u8_avx2(top, bot, t, out, n);
#endif
    bilinear_lerp_u8(top, bot, t, out, n);
}

// The bilinear resize, writing either float32 (dst_f) or rounded uint8 (dst_u8).
template <typename Out>
void resize_bilinear_any(const uint8_t* src, int h, int w, int c, size_t src_stride, Out* dst,
                         int oh, int ow, size_t dst_stride, bool may_stream, size_t plane, Mirror m);

// plane > 0: channels-first output, channel k at dst + k * plane (dst_stride is then the
// row stride within a plane); plane == 0: interleaved (HWC). `m`: the output written
// mirrored, each value computed as unmirrored and stored at its mirrored place (m.h: the
// horizontal pass runs over mirrored taps; m.v: output row y goes to row oh - 1 - y).
template <typename Out>
void resize_bilinear_any(const uint8_t* src, int h, int w, int c, size_t src_stride, Out* dst,
                         int oh, int ow, size_t dst_stride, bool may_stream, size_t plane, Mirror m) {
    const auto ys = bilinear_taps(h, oh);
    const RowTaps xs = row_taps(w, ow, c, m.h);
    const int n = ow * c;
    // Two horizontally resized rows (one float of slack each), reused while consecutive
    // output rows share source rows, and the current source row widened to float.
    std::vector<float> buf0(static_cast<size_t>(n) + 8), buf1(static_cast<size_t>(n) + 8);
    std::vector<float> wide(static_cast<size_t>(w) * c + 1);
    std::vector<uint8_t> u8row(plane && !std::is_same_v<Out, float> ? static_cast<size_t>(n) : 0);
    float* rows[2] = {buf0.data(), buf1.data()};
    int which[2] = {-1, -1};  // source row held by rows[0], rows[1]
#ifdef PYIMGDIR_SSE_ROWS
    // Stream float images of 256 KiB or more (a batch of 64 is then at least half of a
    // 32 MiB L3, so it would be evicted before the consumer reads it anyway).
    const bool stream = may_stream && std::is_same_v<Out, float> &&
                        static_cast<size_t>(n) * oh * sizeof(float) >= (size_t(256) << 10);
#endif
    auto fill = [&](int slot, int y) {
        bilinear_row(src + static_cast<size_t>(y) * src_stride, w, xs, ow, c, wide.data(), rows[slot]);
        which[slot] = y;
    };
    for (int y = 0; y < oh; ++y) {
        const Tap& ty = ys[y];
        int ts = which[0] == ty.lo ? 0 : (which[1] == ty.lo ? 1 : -1);
        int bs = which[0] == ty.hi ? 0 : (which[1] == ty.hi ? 1 : -1);
        if (ts < 0) {
            ts = bs == 0 ? 1 : 0;
            fill(ts, ty.lo);
        }
        if (bs < 0) {
            if (ty.hi == ty.lo) {
                bs = ts;
            } else {
                bs = 1 - ts;
                fill(bs, ty.hi);
            }
        }
        const float* top = rows[ts];
        const float* bot = rows[bs];
        Out* o = dst + static_cast<size_t>(m.v ? oh - 1 - y : y) * dst_stride;
        if (plane) {
            if constexpr (std::is_same_v<Out, float>) {
#ifdef PYIMGDIR_SSE_ROWS
                bilinear_lerp_planar(top, bot, ty.t, o, ow, c, plane, stream);
#else
                bilinear_lerp_planar(top, bot, ty.t, o, ow, c, plane, false);
#endif
            } else {
                lerp_u8(top, bot, ty.t, u8row.data(), n);
                for (int x = 0; x < ow; ++x)
                    for (int k = 0; k < c; ++k) o[k * plane + x] = u8row[static_cast<size_t>(x) * c + k];
            }
            continue;
        }
        if constexpr (std::is_same_v<Out, float>) {
#ifdef PYIMGDIR_SSE_ROWS
            if (stream) {
#ifdef PYIMGDIR_AVX2_ROWS
                if (cpu_has_avx2()) {
                    bilinear_lerp_stream_avx2(top, bot, ty.t, o, n);
                    continue;
                }
#endif
                bilinear_lerp_stream(top, bot, ty.t, o, n);
                continue;
            }
#endif
            bilinear_lerp(top, bot, ty.t, o, n);
        } else {
            lerp_u8(top, bot, ty.t, o, n);
        }
    }
#ifdef PYIMGDIR_SSE_ROWS
    if (stream) _mm_sfence();
#endif
}

std::vector<int> nearest_index(int in, int out) {
    std::vector<int> idx(static_cast<size_t>(out));
    const float scale = static_cast<float>(in) / static_cast<float>(out);
    for (int i = 0; i < out; ++i) {
        const int64_t v = static_cast<int64_t>(std::floor((static_cast<float>(i) + 0.5f) * scale));
        idx[i] = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(v, in - 1)));
    }
    return idx;
}

// ---------------------------------------------------------------------------------------------
// Shared helpers.

// TensorFlow's ImageResizerState scale (align_corners=False): in / out in float32.
inline float resize_scale(int in, int out) {
    return static_cast<float>(in) / static_cast<float>(out);
}

inline int64_t bound_index(int64_t v, int64_t limit) {
    return std::min<int64_t>(limit - 1, std::max<int64_t>(0, v));
}

inline const uint8_t* row_ptr(const uint8_t* src, size_t stride, int64_t y) {
    return src + static_cast<size_t>(y) * stride;
}

// ---------------------------------------------------------------------------------------------
// Bicubic: TensorFlow's ResizeBicubic with half_pixel_centers=True (Keys cubic, a = -0.5).
// TF reads its weights from a 1025-entry table built in double and stored as float, indexes it
// with lrintf(delta * 1024), zeroes the taps that fall outside the image and renormalises.
// It interpolates each 4x4 patch vertically first (per source column) and then horizontally,
// summing the four products left to right in float32.

constexpr int kCubicTableSize = 1 << 10;

// Entry `i` of TF's coefficient table: which = 0 is the |x| in [0, 1] branch at x = i / 1024,
// which = 1 the |x| in [1, 2] branch at x = 1 + i / 1024.
float keys_table(int i, int which) {
    const double a = -0.5;  // TF passes -0.5f as a double
    float x = static_cast<float>(i * 1.0 / kCubicTableSize);
    if (which == 0) return static_cast<float>(((a + 2) * x - (a + 3)) * x * x + 1);
    x = static_cast<float>(x + 1.0);
    return static_cast<float>(((a * x - 5 * a) * x + 8 * a) * x - 4 * a);
}

struct CubicTaps {
    int idx[4];
    float w[4];
};

std::vector<CubicTaps> bicubic_taps(int in, int out) {
    std::vector<CubicTaps> taps(static_cast<size_t>(out));
    const float scale = resize_scale(in, out);
    for (int i = 0; i < out; ++i) {
        const float in_loc_f = (static_cast<float>(i) + 0.5f) * scale - 0.5f;
        const int64_t in_loc = static_cast<int64_t>(std::floor(in_loc_f));
        const float delta = in_loc_f - static_cast<float>(in_loc);
        const long offset = std::lrintf(delta * static_cast<float>(kCubicTableSize));
        const int o = static_cast<int>(offset);
        const float raw[4] = {keys_table(o, 1), keys_table(o, 0), keys_table(kCubicTableSize - o, 0),
                              keys_table(kCubicTableSize - o, 1)};
        CubicTaps& t = taps[i];
        for (int k = 0; k < 4; ++k) {
            const int64_t want = in_loc - 1 + k;
            const int64_t got = bound_index(want, in);
            t.idx[k] = static_cast<int>(got);
            t.w[k] = got == want ? raw[k] : 0.0f;
        }
        const float sum = t.w[0] + t.w[1] + t.w[2] + t.w[3];
        if (std::abs(sum) >= 1000.0f * std::numeric_limits<float>::min()) {
            const float inv = 1.0f / sum;
            for (float& w : t.w) w *= inv;
        }
    }
    return taps;
}

// C > 0 fixes the channel count at compile time (C == 0: use c_rt).
template <int C>
void resize_bicubic_impl(const uint8_t* src, int h, int w, int c_rt, size_t src_stride, float* dst,
                         int oh, int ow, size_t dst_stride) {
    const int c = C > 0 ? C : c_rt;
    const auto ys = bicubic_taps(h, oh);
    const auto xs = bicubic_taps(w, ow);
    const size_t n = static_cast<size_t>(w) * c;
    std::vector<float> col(n);  // vertical interpolation of every source column
    for (int y = 0; y < oh; ++y) {
        const CubicTaps& ty = ys[y];
        const uint8_t* r0 = row_ptr(src, src_stride, ty.idx[0]);
        const uint8_t* r1 = row_ptr(src, src_stride, ty.idx[1]);
        const uint8_t* r2 = row_ptr(src, src_stride, ty.idx[2]);
        const uint8_t* r3 = row_ptr(src, src_stride, ty.idx[3]);
        const float w0 = ty.w[0], w1 = ty.w[1], w2 = ty.w[2], w3 = ty.w[3];
        for (size_t k = 0; k < n; ++k)
            col[k] = static_cast<float>(r0[k]) * w0 + static_cast<float>(r1[k]) * w1 +
                     static_cast<float>(r2[k]) * w2 + static_cast<float>(r3[k]) * w3;
        float* o = dst + static_cast<size_t>(y) * dst_stride;
        for (int x = 0; x < ow; ++x) {
            const CubicTaps& tx = xs[x];
            const float* v0 = &col[static_cast<size_t>(tx.idx[0]) * c];
            const float* v1 = &col[static_cast<size_t>(tx.idx[1]) * c];
            const float* v2 = &col[static_cast<size_t>(tx.idx[2]) * c];
            const float* v3 = &col[static_cast<size_t>(tx.idx[3]) * c];
            float* op = o + static_cast<size_t>(x) * c;
            for (int k = 0; k < c; ++k)
                op[k] = v0[k] * tx.w[0] + v1[k] * tx.w[1] + v2[k] * tx.w[2] + v3[k] * tx.w[3];
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Area: TensorFlow's ResizeArea (no half-pixel offset). Each output pixel averages the source
// cells its footprint covers, with fractional weights at both ends. TF sums each covered source
// row horizontally first (first cell * its scale, whole cells added as they are, last cell *
// its scale), then accumulates the rows times their scales, then multiplies by
// (float)(1.0 / (height_scale * width_scale)), all in float32 except that last division.

struct AreaSpan {
    int64_t start, end;  // source cells [start, end), possibly past the edge (then clamped)
    float start_scale, end_minus_one_scale;
};

// TF's per-cell scale for cell v of the footprint [in0, in1).
inline float area_cell_scale(int64_t v, float in0, float in1, float scale) {
    const float vf = static_cast<float>(v), v1 = static_cast<float>(v + 1);
    if (vf < in0) return v1 > in1 ? scale : v1 - in0;
    return v1 > in1 ? in1 - vf : 1.0f;
}

std::vector<AreaSpan> area_spans(int in, int out) {
    std::vector<AreaSpan> spans(static_cast<size_t>(out));
    const float scale = resize_scale(in, out);
    for (int i = 0; i < out; ++i) {
        const float in0 = static_cast<float>(i) * scale;
        const float in1 = static_cast<float>(i + 1) * scale;
        AreaSpan& s = spans[i];
        s.start = static_cast<int64_t>(std::floor(in0));
        s.end = static_cast<int64_t>(std::ceil(in1));
        s.start_scale = area_cell_scale(s.start, in0, in1, scale);
        s.end_minus_one_scale = area_cell_scale(s.end - 1, in0, in1, scale);
    }
    return spans;
}

// C > 0 fixes the channel count at compile time (C == 0: use c_rt).
template <int C>
void resize_area_impl(const uint8_t* src, int h, int w, int c_rt, size_t src_stride, float* dst,
                      int oh, int ow, size_t dst_stride) {
    const int c = C > 0 ? C : c_rt;
    const auto xs = area_spans(w, ow);
    const float hscale = resize_scale(h, oh), wscale = resize_scale(w, ow);
    const float scale = static_cast<float>(1.0 / static_cast<double>(hscale * wscale));
    const size_t n = static_cast<size_t>(ow) * c;

    // Horizontal sums of a source row for every output column. They do not depend on the output
    // row, so each source row is summed once and kept in a small ring: output rows read
    // non-decreasing source rows, fewer than `slots` of them per output row.
    int64_t max_rows = 1;
    for (int y = 0; y < oh; ++y) {
        const float in0 = static_cast<float>(y) * hscale;
        const float in1 = static_cast<float>(y + 1) * hscale;
        max_rows = std::max<int64_t>(max_rows, static_cast<int64_t>(std::ceil(in1)) -
                                                   static_cast<int64_t>(std::floor(in0)));
    }
    const size_t slots = static_cast<size_t>(std::min<int64_t>(max_rows + 1, h));
    std::vector<float> ring(slots * n);
    std::vector<int64_t> ring_row(slots, -1);
    auto row_sums = [&](int64_t r) -> const float* {
        const size_t slot = static_cast<size_t>(r) % slots;
        float* out = &ring[slot * n];
        if (ring_row[slot] == r) return out;
        ring_row[slot] = r;
        const uint8_t* s = row_ptr(src, src_stride, r);
        for (int x = 0; x < ow; ++x) {
            const AreaSpan& sp = xs[x];
            const uint8_t* first = s + static_cast<size_t>(bound_index(sp.start, w)) * c;
            float* o = out + static_cast<size_t>(x) * c;
            for (int k = 0; k < c; ++k) o[k] = static_cast<float>(first[k]) * sp.start_scale;
            if (sp.start + 1 != sp.end) {
                for (int64_t v = sp.start + 1; v < sp.end - 1; ++v) {
                    const uint8_t* p = s + static_cast<size_t>(bound_index(v, w)) * c;
                    for (int k = 0; k < c; ++k) o[k] += static_cast<float>(p[k]);
                }
                const uint8_t* last = s + static_cast<size_t>(bound_index(sp.end - 1, w)) * c;
                for (int k = 0; k < c; ++k)
                    o[k] += static_cast<float>(last[k]) * sp.end_minus_one_scale;
            }
        }
        return out;
    };

    std::vector<float> acc(n);
    for (int y = 0; y < oh; ++y) {
        const float in0 = static_cast<float>(y) * hscale;
        const float in1 = static_cast<float>(y + 1) * hscale;
        const int64_t y0 = static_cast<int64_t>(std::floor(in0));
        const int64_t y1 = static_cast<int64_t>(std::ceil(in1));
        std::fill(acc.begin(), acc.end(), 0.0f);
        for (int64_t i = y0; i < y1; ++i) {
            const float sy = area_cell_scale(i, in0, in1, hscale);
            const float* rs = row_sums(bound_index(i, h));
            for (size_t k = 0; k < n; ++k) acc[k] += rs[k] * sy;
        }
        float* o = dst + static_cast<size_t>(y) * dst_stride;
        for (size_t k = 0; k < n; ++k) o[k] = acc[k] * scale;
    }
}

// ---------------------------------------------------------------------------------------------
// ScaleAndTranslate (lanczos3, lanczos5, gaussian, mitchellcubic) with antialias=False and
// translation 0, as tf.image.resize calls it: scale = (float)out / (float)in, the sampling
// kernel evaluated in float32 at each source centre within the kernel radius, weights
// normalised by 1 / sum. Rows are gathered first into an out_h x in_w float buffer, then
// columns; every output starts at 0 and adds weight * value tap by tap.

float lanczos_kernel(float radius, float x) {
    constexpr float kPI = 3.14159265359;
    x = std::abs(x);
    if (x > radius) return 0.0f;
    if (x <= 1e-3) return 1.0f;
    return radius * std::sin(kPI * x) * std::sin(kPI * x / radius) / (kPI * kPI * x * x);
}

float gaussian_kernel(float x) {
    constexpr float radius = 1.5f;
    constexpr float sigma = radius / 3.0f;
    x = std::abs(x);
    if (x >= radius) return 0.0f;
    return static_cast<float>(std::exp(-x * x / (2.0 * sigma * sigma)));
}

float mitchell_kernel(float x) {
    x = std::abs(x);
    if (x >= 2.0f) return 0.0f;
    if (x >= 1.0f) return (((-7.0f / 18.0f) * x + 2.0f) * x - 10.0f / 3.0f) * x + 16.0f / 9.0f;
    return (((7.0f / 6.0f) * x - 2.0f) * x) * x + 8.0f / 9.0f;
}

struct KernelSpans {
    int span_size = 0;
    std::vector<int> starts;     // per output
    std::vector<int> counts;     // taps actually read: min(start + span_size, in) - start
    std::vector<float> weights;  // span_size per output, zero padded
};

template <typename Kernel>
KernelSpans compute_spans(const Kernel& kernel, float radius, int in, int out) {
    KernelSpans sp;
    const float scale = static_cast<float>(out) / static_cast<float>(in);
    const float inv_scale = static_cast<float>(1.0 / static_cast<double>(scale));
    const float inv_translate = -inv_scale * 0.0f;
    const float kernel_scale = 1.0f;  // antialias=False
    sp.span_size = std::min(2 * static_cast<int>(std::ceil(radius * kernel_scale)) + 1, in);
    sp.starts.assign(static_cast<size_t>(out), 0);
    sp.counts.assign(static_cast<size_t>(out), 0);
    sp.weights.assign(static_cast<size_t>(out) * sp.span_size, 0.0f);
    const float one_over_kernel_scale = 1.0f / kernel_scale;
    std::vector<float> temp;
    for (int x = 0; x < out; ++x) {
        const float col_f = static_cast<float>(x) + 0.5f;
        const float sample_f = col_f * inv_scale + inv_translate;
        if (sample_f < 0 || sample_f > static_cast<float>(in)) {
            sp.starts[x] = 0;  // empty span: all weights stay 0
        } else {
            int64_t start = static_cast<int64_t>(std::ceil(sample_f - radius * kernel_scale - 0.5f));
            int64_t end = static_cast<int64_t>(std::floor(sample_f + radius * kernel_scale - 0.5f));
            start = std::min<int64_t>(in - 1, std::max<int64_t>(0, start));
            end = std::min<int64_t>(in - 1, std::max<int64_t>(0, end)) + 1;
            float total = 0.0f;
            temp.clear();
            for (int64_t s = start; s < end; ++s) {
                const float pos = static_cast<float>(s) + 0.5f - sample_f;
                const float wgt = kernel(std::abs(pos * one_over_kernel_scale));
                total += wgt;
                temp.push_back(wgt);
            }
            if (std::abs(total) >= 1000.0f * std::numeric_limits<float>::min()) {
                const float inv_total = 1.0f / total;
                float* wp = &sp.weights[static_cast<size_t>(x) * sp.span_size];
                for (size_t k = 0; k < temp.size() && k < static_cast<size_t>(sp.span_size); ++k)
                    wp[k] = temp[k] * inv_total;
            }
            sp.starts[x] = static_cast<int>(start);
        }
        sp.counts[x] = std::min(sp.starts[x] + sp.span_size, in) - sp.starts[x];
    }
    return sp;
}

KernelSpans kernel_spans(Interpolation method, int in, int out) {
    switch (method) {
        case Interpolation::Lanczos3:
            return compute_spans([](float x) { return lanczos_kernel(3.0f, x); }, 3.0f, in, out);
        case Interpolation::Lanczos5:
            return compute_spans([](float x) { return lanczos_kernel(5.0f, x); }, 5.0f, in, out);
        case Interpolation::Gaussian:
            return compute_spans(gaussian_kernel, 1.5f, in, out);
        case Interpolation::MitchellCubic:
            return compute_spans(mitchell_kernel, 2.0f, in, out);
        default:
            throw std::invalid_argument("not a scale-and-translate interpolation");
    }
}

// C > 0 fixes the channel count at compile time (C == 0: use c_rt).
template <int C>
void resize_scale_translate_impl(const uint8_t* src, int /*h*/, int w, int c_rt, size_t src_stride,
                                 float* dst, int oh, int ow, size_t dst_stride,
                                 const KernelSpans& rows, const KernelSpans& cols) {
    const int c = C > 0 ? C : c_rt;
    const size_t n = static_cast<size_t>(w) * c;
    std::vector<float> inter(n);  // one row of the out_h x in_w intermediate
    for (int y = 0; y < oh; ++y) {
        std::fill(inter.begin(), inter.end(), 0.0f);
        const float* wy = &rows.weights[static_cast<size_t>(y) * rows.span_size];
        for (int j = 0; j < rows.counts[y]; ++j) {
            const uint8_t* s = row_ptr(src, src_stride, rows.starts[y] + j);
            const float wj = wy[j];
            for (size_t k = 0; k < n; ++k) inter[k] += wj * static_cast<float>(s[k]);
        }
        float* o = dst + static_cast<size_t>(y) * dst_stride;
        for (int x = 0; x < ow; ++x) {
            float* op = o + static_cast<size_t>(x) * c;
            for (int k = 0; k < c; ++k) op[k] = 0.0f;
            const float* wx = &cols.weights[static_cast<size_t>(x) * cols.span_size];
            const float* ip = &inter[static_cast<size_t>(cols.starts[x]) * c];
            for (int j = 0; j < cols.counts[x]; ++j, ip += c) {
                const float wj = wx[j];
                for (int k = 0; k < c; ++k) op[k] += wj * ip[k];
            }
        }
    }
}

// Runs F<C> with the channel count fixed for the common cases (1, 3, 4).
#define PYIMGDIR_DISPATCH_CHANNELS(F, c, ...)          \
    switch (c) {                                       \
        case 1: return F<1>(__VA_ARGS__);              \
        case 3: return F<3>(__VA_ARGS__);              \
        case 4: return F<4>(__VA_ARGS__);              \
        default: return F<0>(__VA_ARGS__);             \
    }

void resize_bicubic(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                    int oh, int ow, size_t dst_stride) {
    PYIMGDIR_DISPATCH_CHANNELS(resize_bicubic_impl, c, src, h, w, c, src_stride, dst, oh, ow,
                               dst_stride)
}

void resize_area(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst, int oh,
                 int ow, size_t dst_stride) {
    PYIMGDIR_DISPATCH_CHANNELS(resize_area_impl, c, src, h, w, c, src_stride, dst, oh, ow,
                               dst_stride)
}

void resize_scale_translate(const uint8_t* src, int h, int w, int c, size_t src_stride,
                            float* dst, int oh, int ow, size_t dst_stride, Interpolation method) {
    const KernelSpans rows = kernel_spans(method, h, oh);
    const KernelSpans cols = kernel_spans(method, w, ow);
    PYIMGDIR_DISPATCH_CHANNELS(resize_scale_translate_impl, c, src, h, w, c, src_stride, dst, oh,
                               ow, dst_stride, rows, cols)
}

#undef PYIMGDIR_DISPATCH_CHANNELS

}  // namespace

void resize_to_float(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                     int out_h, int out_w, size_t dst_stride, Interpolation method, bool may_stream) {
    switch (method) {
        case Interpolation::Bilinear:
            return resize_bilinear_any<float>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, may_stream, 0,
                                              Mirror{});
        case Interpolation::Nearest: {
            const auto ys = nearest_index(h, out_h), xs = nearest_index(w, out_w);
            for (int y = 0; y < out_h; ++y) {
                const uint8_t* s = src + static_cast<size_t>(ys[y]) * src_stride;
                float* o = dst + static_cast<size_t>(y) * dst_stride;
                for (int x = 0; x < out_w; ++x)
                    for (int k = 0; k < c; ++k)
                        o[static_cast<size_t>(x) * c + k] = s[static_cast<size_t>(xs[x]) * c + k];
            }
            return;
        }
        case Interpolation::Bicubic:
            return resize_bicubic(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride);
        case Interpolation::Area:
            return resize_area(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride);
        case Interpolation::Lanczos3:
        case Interpolation::Lanczos5:
        case Interpolation::Gaussian:
        case Interpolation::MitchellCubic:
            return resize_scale_translate(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride,
                                          method);
    }
}

void resize_to_u8(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                  int out_h, int out_w, size_t dst_stride, Interpolation method, std::vector<float>& scratch) {
    if (method == Interpolation::Nearest)
        return resize_nearest_u8(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride);
    if (method == Interpolation::Bilinear)
        return resize_bilinear_any<uint8_t>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, true, 0, Mirror{});
    const size_t row = static_cast<size_t>(out_w) * c;
    scratch.resize(row * out_h);
    resize_to_float(src, h, w, c, src_stride, scratch.data(), out_h, out_w, row, method);
    for (int y = 0; y < out_h; ++y)
        for (size_t k = 0; k < row; ++k) dst[y * dst_stride + k] = round_to_u8(scratch[y * row + k]);
}

void resize_bilinear_hwc(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst, int out_h,
                         int out_w, size_t dst_stride, Mirror m) {
    resize_bilinear_any<float>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, true, 0, m);
}

void resize_bilinear_hwc(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst, int out_h,
                         int out_w, size_t dst_stride, Mirror m) {
    resize_bilinear_any<uint8_t>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, true, 0, m);
}

void resize_bilinear_planar(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                            int out_h, int out_w, size_t dst_stride, size_t plane, Mirror m) {
    resize_bilinear_any<float>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, true, plane, m);
}

void resize_bilinear_planar(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                            int out_h, int out_w, size_t dst_stride, size_t plane, Mirror m) {
    resize_bilinear_any<uint8_t>(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride, true, plane, m);
}

bool rows_read_by_resize(Interpolation method, int in, int out, uint8_t* mask) {
    if (in <= 0 || out <= 0) return false;
    if (method == Interpolation::Bilinear) {
        for (const Tap& t : bilinear_taps(in, out)) mask[t.lo] = mask[t.hi] = 1;
        return true;
    }
    if (method == Interpolation::Nearest) {
        for (int i : nearest_index(in, out)) mask[i] = 1;
        return true;
    }
    return false;
}

void resize_nearest_u8(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                       int out_h, int out_w, size_t dst_stride) {
    const auto ys = nearest_index(h, out_h), xs = nearest_index(w, out_w);
    for (int y = 0; y < out_h; ++y) {
        const uint8_t* s = src + static_cast<size_t>(ys[y]) * src_stride;
        uint8_t* o = dst + static_cast<size_t>(y) * dst_stride;
        for (int x = 0; x < out_w; ++x)
            for (int k = 0; k < c; ++k)
                o[static_cast<size_t>(x) * c + k] = s[static_cast<size_t>(xs[x]) * c + k];
    }
}

}  // namespace pyimgdir
