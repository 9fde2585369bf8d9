// Training input: random-resized crop boxes and random flips, drawn per sample from a
// counter-based random stream keyed only by (seed, epoch, file index), so thread count,
// batch size, sharding and resuming never change a sample.
#pragma once

#include <cstddef>
#include <cstdint>

namespace pyimgdir {

enum class Flip { None, Horizontal, Vertical, Both };

struct AugmentParams {
    bool random_crop = false;
    // torchvision's RandomResizedCrop defaults: area fraction and aspect ratio (w / h),
    // the ratio drawn log-uniformly.
    double scale_min = 0.08, scale_max = 1.0;
    double ratio_min = 3.0 / 4.0, ratio_max = 4.0 / 3.0;
    Flip flip = Flip::None;
    uint64_t seed = 0;

    bool active() const { return random_crop || flip != Flip::None; }
};

// One sample's augmentation: the crop box in the image's own pixels (the whole image when
// random_crop is off) and whether the output is mirrored left-right and/or top-bottom.
struct Augment {
    int y = 0, x = 0, h = 0, w = 0;
    bool flip_h = false, flip_v = false;
};

// The crop follows torchvision's RandomResizedCrop.get_params: up to 10 tries of an area
// fraction uniform in [scale_min, scale_max] and a log-uniform aspect ratio, sides rounded
// half to even, accepted when the box fits, placed uniformly; then the centre-crop fallback.
Augment draw_augment(const AugmentParams& p, int64_t epoch, int64_t file_index, int height, int width);

// The JPEG DCT scale for decoding a `box_h` x `box_w` crop that is resized to out_h x out_w:
// the largest of 8, 4, 2 that keeps the scaled crop at least as large as the output, or 1.
int crop_dct_scale(int height, int width, int box_y, int box_x, int box_h, int box_w, int out_h, int out_w);

// A box in an image's pixels mapped onto the same image decoded at 1/scale (libjpeg's output
// size: the dimensions divided by scale, rounded up). Edges are rounded to the nearest pixel
// and the result stays at least one pixel and inside the scaled image.
void scale_box(int height, int width, int scale, int& y, int& x, int& h, int& w);

// Mirrors an HWC (`pixel_bytes` = channels x item size) or CHW block of samples in place.
void flip_in_place(uint8_t* data, int height, int width, size_t pixel_bytes, size_t row_stride, bool horizontal,
                   bool vertical);

}  // namespace pyimgdir
