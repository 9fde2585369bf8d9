// Resizing with tf.image.resize's numerics (antialias=False, half-pixel centres where TF
// uses them, no clipping), plus Keras' crop_to_aspect_ratio / pad_to_aspect_ratio boxes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/image.hpp"

namespace pyimgdir {

enum class Interpolation { Bilinear, Nearest, Bicubic, Area, Lanczos3, Lanczos5, Gaussian, MitchellCubic };

// Parses the lower-case Keras name; throws std::invalid_argument for anything else.
Interpolation parse_interpolation(const std::string& name);

// Resizes a uint8 HWC image (`src`, row stride `src_stride` bytes) to out_h x out_w and
// writes float32 HWC to `dst` (row stride `dst_stride` floats, channel count unchanged).
// `may_stream`: large outputs may be written with non-temporal stores (bypassing the cache);
// false when the caller reads the output right back.
void resize_to_float(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                     int out_h, int out_w, size_t dst_stride, Interpolation method, bool may_stream = true);

// The uint8 conversion of every uint8 output: clamp to [0, 255], then round halves up.
// Branch-free so loops using it vectorise (NaN cannot occur: inputs are bytes, weights finite).
inline uint8_t round_to_u8(float v) {
    v = v < 0.0f ? 0.0f : v;
    v = v > 255.0f ? 255.0f : v;
    return static_cast<uint8_t>(static_cast<int>(v + 0.5f));
}

// Resizes and rounds to uint8 (clamped to [0, 255], halves away from zero): the value is
// that of resize_to_float rounded, computed without a float image where the method allows.
void resize_to_u8(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                  int out_h, int out_w, size_t dst_stride, Interpolation method, std::vector<float>& scratch);

// A flip of the output, fused into the bilinear resize: each value is computed exactly as
// without it and stored at its mirrored place, so the result equals resizing and then
// flipping (tf.image.flip_left_right / flip_up_down after tf.image.resize) bit for bit.
struct Mirror {
    bool h = false;  // left-right
    bool v = false;  // top-bottom
};

// Bilinear resize to HWC output (float32, or rounded to uint8 as resize_to_u8 does), mirrored
// as `m` says: the values of resize_to_float / resize_to_u8 with Interpolation::Bilinear.
void resize_bilinear_hwc(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst, int out_h,
                         int out_w, size_t dst_stride, Mirror m);
void resize_bilinear_hwc(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst, int out_h,
                         int out_w, size_t dst_stride, Mirror m);

// Bilinear resize to channels-first (CHW) output: channel k of output pixel (y, x) is written
// to dst[k * plane + y * dst_stride + x] (plane and dst_stride in elements). The values are
// those of resize_to_float / resize_to_u8 with Interpolation::Bilinear, written in place of
// a transpose of their output (mirrored as `m` says). The planes must not overlap
// (plane >= out_h * dst_stride).
void resize_bilinear_planar(const uint8_t* src, int h, int w, int c, size_t src_stride, float* dst,
                            int out_h, int out_w, size_t dst_stride, size_t plane, Mirror m = {});
void resize_bilinear_planar(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                            int out_h, int out_w, size_t dst_stride, size_t plane, Mirror m = {});
// Marks mask[r] = 1 for each of the `in` source rows that resizing `in` rows to `out` reads
// (bilinear and nearest read at most two rows per output row). Returns false, marking
// nothing, for methods whose kernels may read any row.
bool rows_read_by_resize(Interpolation method, int in, int out, uint8_t* mask);

// Nearest neighbour keeps uint8 (as TF does); writes uint8 HWC.
void resize_nearest_u8(const uint8_t* src, int h, int w, int c, size_t src_stride, uint8_t* dst,
                       int out_h, int out_w, size_t dst_stride);

}  // namespace pyimgdir
