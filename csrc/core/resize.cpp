#include "core/resize.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <vector>

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

void resize_bilinear(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                     int oh, int ow, size_t dst_stride) {
    const auto ys = bilinear_taps(h, oh);
    const auto xs = bilinear_taps(w, ow);
    // Rows of the source converted to float once per distinct source row, so each output
    // row is two float row lookups and the lerps.
    std::vector<float> top(static_cast<size_t>(ow) * c), bot(static_cast<size_t>(ow) * c);
    std::vector<float> rowf(static_cast<size_t>(w) * c);
    auto horizontal = [&](int y, std::vector<float>& out) {
        const uint8_t* s = src + static_cast<size_t>(y) * src_stride;
        for (size_t k = 0; k < rowf.size(); ++k) rowf[k] = static_cast<float>(s[k]);
        // Keep the (left, right) pair per output column; the vertical lerp needs
        // top = tl + (tr - tl) * x and bottom likewise, exactly as TF computes them.
        for (int x = 0; x < ow; ++x) {
            const float* l = &rowf[static_cast<size_t>(xs[x].lo) * c];
            const float* r = &rowf[static_cast<size_t>(xs[x].hi) * c];
            const float t = xs[x].t;
            float* o = &out[static_cast<size_t>(x) * c];
            for (int k = 0; k < c; ++k) o[k] = l[k] + (r[k] - l[k]) * t;
        }
    };
    int have_top = -1, have_bot = -1;
    for (int y = 0; y < oh; ++y) {
        const Tap& ty = ys[y];
        if (ty.lo == have_bot && ty.lo != have_top) {
            std::swap(top, bot);
            std::swap(have_top, have_bot);
        }
        if (ty.lo != have_top) {
            horizontal(ty.lo, top);
            have_top = ty.lo;
        }
        if (ty.hi != have_bot) {
            if (ty.hi == have_top) {
                bot = top;
            } else {
                horizontal(ty.hi, bot);
            }
            have_bot = ty.hi;
        }
        float* o = dst + static_cast<size_t>(y) * dst_stride;
        const float t = ty.t;
        const size_t n = static_cast<size_t>(ow) * c;
        for (size_t k = 0; k < n; ++k) o[k] = top[k] + (bot[k] - top[k]) * t;
    }
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

}  // namespace

void resize_to_float(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                     int out_h, int out_w, size_t dst_stride, Interpolation method) {
    switch (method) {
        case Interpolation::Bilinear:
            return resize_bilinear(src, h, w, c, src_stride, dst, out_h, out_w, dst_stride);
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
        default:
            throw std::invalid_argument("this interpolation is not implemented in the core yet");
    }
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
