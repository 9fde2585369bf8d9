#include "core/crop.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/decode.hpp"
#include "core/pipeline.hpp"

namespace pyimgdir {
namespace {

// splitmix64's output function: a bijective avalanche mix of 64 bits.
uint64_t mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

constexpr uint64_t kGolden = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kCropStream = 0x63726f70ULL;  // "crop"
constexpr uint64_t kFlipStream = 0x666c6970ULL;  // "flip"

// A counter-based stream: draw k is mix64(key + (k + 1) * golden), i.e. splitmix64 started
// at `key`. The key hashes (seed, epoch, file index, stream), one field at a time, so any
// sample's draws can be computed on their own, in any order, on any thread.
struct Stream {
    uint64_t state;

    Stream(uint64_t seed, int64_t epoch, int64_t file_index, uint64_t stream) {
        uint64_t k = mix64(seed + kGolden);
        k = mix64(k ^ (static_cast<uint64_t>(epoch) + kGolden));
        k = mix64(k ^ (static_cast<uint64_t>(file_index) + kGolden));
        state = mix64(k ^ stream);
    }
    uint64_t next() { return mix64(state += kGolden); }
    // Uniform in [0, 1) with 53 random bits.
    double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }
    double uniform(double a, double b) { return a + (b - a) * uniform(); }
    // Uniform integer in [0, n) (n >= 1); the bias of the multiply-shift is below 2^-32.
    int64_t below(int64_t n) {
        return static_cast<int64_t>((static_cast<unsigned __int128>(next()) * static_cast<uint64_t>(n)) >> 64);
    }
};

// Python's round(): to nearest, ties to even (std::nearbyint in the default rounding mode).
int round_half_even(double v) { return static_cast<int>(std::nearbyint(v)); }

int round_div(int64_t a, int d) { return static_cast<int>((2 * a + d) / (2 * static_cast<int64_t>(d))); }

}  // namespace

Augment draw_augment(const AugmentParams& p, int64_t epoch, int64_t file_index, int height, int width) {
    Augment a;
    a.h = height;
    a.w = width;
    if (p.random_crop && height > 0 && width > 0) {
        Stream s(p.seed, epoch, file_index, kCropStream);
        const double area = static_cast<double>(height) * width;
        const double log_lo = std::log(p.ratio_min), log_hi = std::log(p.ratio_max);
        bool found = false;
        for (int attempt = 0; attempt < 10 && !found; ++attempt) {
            const double target_area = area * s.uniform(p.scale_min, p.scale_max);
            const double aspect = std::exp(s.uniform(log_lo, log_hi));
            const int w = round_half_even(std::sqrt(target_area * aspect));
            const int h = round_half_even(std::sqrt(target_area / aspect));
            if (0 < w && w <= width && 0 < h && h <= height) {
                a.y = static_cast<int>(s.below(height - h + 1));
                a.x = static_cast<int>(s.below(width - w + 1));
                a.h = h;
                a.w = w;
                found = true;
            }
        }
        if (!found) {
            // torchvision's fallback: the largest centred box within the ratio range.
            const double in_ratio = static_cast<double>(width) / height;
            int w = width, h = height;
            if (in_ratio < p.ratio_min) {
                h = std::clamp(round_half_even(w / p.ratio_min), 1, height);
            } else if (in_ratio > p.ratio_max) {
                w = std::clamp(round_half_even(h * p.ratio_max), 1, width);
            }
            a.h = h;
            a.w = w;
            a.y = (height - h) / 2;
            a.x = (width - w) / 2;
        }
    }
    if (p.flip != Flip::None) {
        Stream s(p.seed, epoch, file_index, kFlipStream);
        const bool h_bit = (s.next() >> 63) != 0;
        const bool v_bit = (s.next() >> 63) != 0;
        a.flip_h = (p.flip == Flip::Horizontal || p.flip == Flip::Both) && h_bit;
        a.flip_v = (p.flip == Flip::Vertical || p.flip == Flip::Both) && v_bit;
    }
    return a;
}

void scale_box(int height, int width, int scale, int& y, int& x, int& h, int& w) {
    if (scale <= 1) return;
    const int oh = (height + scale - 1) / scale, ow = (width + scale - 1) / scale;
    int y1 = std::min(oh, round_div(static_cast<int64_t>(y) + h, scale));
    int x1 = std::min(ow, round_div(static_cast<int64_t>(x) + w, scale));
    y1 = std::max(y1, 1);
    x1 = std::max(x1, 1);
    const int y0 = std::min(round_div(y, scale), y1 - 1);
    const int x0 = std::min(round_div(x, scale), x1 - 1);
    y = y0;
    x = x0;
    h = y1 - y0;
    w = x1 - x0;
}

int crop_dct_scale(int height, int width, int box_y, int box_x, int box_h, int box_w, int out_h, int out_w) {
    for (int d : {8, 4, 2}) {
        int y = box_y, x = box_x, h = box_h, w = box_w;
        scale_box(height, width, d, y, x, h, w);
        if (h >= out_h && w >= out_w) return d;
    }
    return 1;
}

namespace {

// Reverses the pixels of each row, N bytes per pixel (fixed, so the copies are inlined).
template <size_t N>
void mirror_rows(uint8_t* data, int height, int width, size_t row_stride) {
    for (int r = 0; r < height; ++r) {
        uint8_t* row = data + static_cast<size_t>(r) * row_stride;
        for (int i = 0, j = width - 1; i < j; ++i, --j) {
            uint8_t a[N], b[N];
            std::memcpy(a, row + static_cast<size_t>(i) * N, N);
            std::memcpy(b, row + static_cast<size_t>(j) * N, N);
            std::memcpy(row + static_cast<size_t>(i) * N, b, N);
            std::memcpy(row + static_cast<size_t>(j) * N, a, N);
        }
    }
}

}  // namespace

void flip_in_place(uint8_t* data, int height, int width, size_t pixel_bytes, size_t row_stride, bool horizontal,
                   bool vertical) {
    if (horizontal) {
        switch (pixel_bytes) {
            case 1: mirror_rows<1>(data, height, width, row_stride); break;
            case 3: mirror_rows<3>(data, height, width, row_stride); break;
            case 4: mirror_rows<4>(data, height, width, row_stride); break;
            case 12: mirror_rows<12>(data, height, width, row_stride); break;
            case 16: mirror_rows<16>(data, height, width, row_stride); break;
            default:
                for (int r = 0; r < height; ++r) {
                    uint8_t* row = data + static_cast<size_t>(r) * row_stride;
                    for (int i = 0, j = width - 1; i < j; ++i, --j)
                        std::swap_ranges(row + static_cast<size_t>(i) * pixel_bytes,
                                         row + static_cast<size_t>(i + 1) * pixel_bytes,
                                         row + static_cast<size_t>(j) * pixel_bytes);
                }
        }
    }
    if (vertical) {
        const size_t bytes = static_cast<size_t>(width) * pixel_bytes;
        for (int i = 0, j = height - 1; i < j; ++i, --j)
            std::swap_ranges(data + static_cast<size_t>(i) * row_stride, data + static_cast<size_t>(i) * row_stride + bytes,
                             data + static_cast<size_t>(j) * row_stride);
    }
}

// ---------------------------------------------------------------------------------------
// One training sample: draw the box from the header, decode only it, resize, flip.

namespace {

struct CropContext {
    const LoaderConfig* cfg;
    AugmentParams params;
    SampleKey key;
    Augment drawn;
};

bool choose_region(const void* ctx, int height, int width, DecodeRegion& r) {
    auto* c = static_cast<CropContext*>(const_cast<void*>(ctx));
    const Augment& a = c->drawn = draw_augment(c->params, c->key.epoch, c->key.file_index, height, width);
    const LoaderConfig& cfg = *c->cfg;
    const int d = cfg.jpeg_downscale ? crop_dct_scale(height, width, a.y, a.x, a.h, a.w, cfg.height, cfg.width) : 1;
    r.y = a.y;
    r.x = a.x;
    r.h = a.h;
    r.w = a.w;
    r.scale = d;
    scale_box(height, width, d, r.y, r.x, r.h, r.w);
    return true;
}

bool crop_rows_needed(const void* ctx, int height, int, uint8_t* mask) {
    const LoaderConfig& cfg = *static_cast<const CropContext*>(ctx)->cfg;
    return rows_read_by_resize(cfg.interpolation, height, cfg.height, mask);
}

// Resizes the `h` x `w` block at `src` (row stride `stride` bytes) into one output sample,
// mirrored as `a` says (after resizing, as tf.image.flip_* after tf.image.resize).
void resize_into_sample(const uint8_t* src, int h, int w, size_t stride, const LoaderConfig& cfg, Scratch& scratch,
                        uint8_t* out, const Augment& a) {
    const int C = cfg.channels, th = cfg.height, tw = cfg.width;
    const size_t plane = static_cast<size_t>(th) * tw;
    const bool f32 = cfg.output == OutputType::Float32;
    if (cfg.interpolation == Interpolation::Bilinear) {
        // The flip is fused into the resize: each value is stored at its mirrored place.
        const Mirror m{a.flip_h, a.flip_v};
        if (cfg.channels_first) {
            if (f32)
                resize_bilinear_planar(src, h, w, C, stride, reinterpret_cast<float*>(out), th, tw, tw, plane, m);
            else
                resize_bilinear_planar(src, h, w, C, stride, out, th, tw, tw, plane, m);
        } else if (f32) {
            resize_bilinear_hwc(src, h, w, C, stride, reinterpret_cast<float*>(out), th, tw,
                                static_cast<size_t>(tw) * C, m);
        } else {
            resize_bilinear_hwc(src, h, w, C, stride, out, th, tw, static_cast<size_t>(tw) * C, m);
        }
        return;
    }
    if (!f32 && !cfg.channels_first) {
        resize_to_u8(src, h, w, C, stride, out, th, tw, static_cast<size_t>(tw) * C, cfg.interpolation,
                     scratch.floats);
    } else if (!cfg.channels_first) {
        resize_to_float(src, h, w, C, stride, reinterpret_cast<float*>(out), th, tw, static_cast<size_t>(tw) * C,
                        cfg.interpolation, /*may_stream=*/!(a.flip_h || a.flip_v));
    } else {
        scratch.floats.resize(plane * C);
        resize_to_float(src, h, w, C, stride, scratch.floats.data(), th, tw, static_cast<size_t>(tw) * C,
                        cfg.interpolation);
        write_planes(scratch.floats.data(), plane, C, cfg.output, out);
    }
    flip_sample(cfg, a, out);
}

}  // namespace

Augment process_random_crop(const uint8_t* data, size_t size, const LoaderConfig& cfg, Scratch& scratch,
                            uint8_t* out, SampleKey key) {
    CropContext ctx{&cfg, cfg.augment(), key, Augment{}};
    DecodeOptions dopts;
    dopts.channels = cfg.channels;
    dopts.max_pixels = cfg.max_pixels;
    dopts.choose_region = choose_region;
    dopts.region_ctx = &ctx;
    dopts.rows_needed = crop_rows_needed;
    dopts.rows_ctx = &ctx;
    dopts.accurate_dct = dopts.pillow = cfg.decoder == Decoder::Pillow;
    Image& img = scratch.image;
    decode_image(data, size, dopts, img);

    const int C = cfg.channels;
    const size_t stride = static_cast<size_t>(img.width) * C;
    int y = 0, x = img.region_x, h = img.height, w = img.region_w;
    if (!img.region) {
        // Not a JPEG: decoded whole; the box comes from the decoded size (the header's).
        ctx.drawn = draw_augment(ctx.params, key.epoch, key.file_index, img.height, img.width);
        y = ctx.drawn.y;
        x = ctx.drawn.x;
        h = ctx.drawn.h;
        w = ctx.drawn.w;
    }
    if (cfg.random_flip == Flip::None) ctx.drawn.flip_h = ctx.drawn.flip_v = false;
    resize_into_sample(img.data() + static_cast<size_t>(y) * stride + static_cast<size_t>(x) * C, h, w, stride, cfg,
                       scratch, out, ctx.drawn);
    return ctx.drawn;
}

void flip_sample(const LoaderConfig& cfg, const Augment& a, uint8_t* out) {
    if (!a.flip_h && !a.flip_v) return;
    const size_t item = cfg.output == OutputType::Float32 ? sizeof(float) : 1;
    const size_t C = static_cast<size_t>(cfg.channels);
    if (!cfg.channels_first) {
        flip_in_place(out, cfg.height, cfg.width, C * item, static_cast<size_t>(cfg.width) * C * item, a.flip_h,
                      a.flip_v);
        return;
    }
    const size_t plane = static_cast<size_t>(cfg.height) * cfg.width * item;
    for (size_t k = 0; k < C; ++k)
        flip_in_place(out + k * plane, cfg.height, cfg.width, item, static_cast<size_t>(cfg.width) * item, a.flip_h,
                      a.flip_v);
}

std::vector<FileAugment> file_augments(const Loader& loader, const std::vector<int64_t>& files, int64_t epoch) {
    const LoaderConfig& cfg = loader.config();
    const AugmentParams p = cfg.augment();
    std::vector<FileAugment> out(files.size());
    std::vector<uint8_t> buf;
    for (size_t i = 0; i < files.size(); ++i) {
        const int64_t f = files[i];
        if (f < 0 || static_cast<size_t>(f) >= loader.size()) throw std::out_of_range("file index out of range");
        FileAugment& r = out[i];
        try {
            read_file(loader.path(static_cast<size_t>(f)), buf);
            image_dimensions(buf.data(), buf.size(), cfg.channels, cfg.max_pixels, r.height, r.width);
        } catch (const DecodeError& e) {
            throw DecodeError(loader.path(static_cast<size_t>(f)) + ": " + e.what());
        }
        r.augment = draw_augment(p, epoch, f, r.height, r.width);
    }
    return out;
}

}  // namespace pyimgdir
