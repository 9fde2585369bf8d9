// Types shared by every stage of the core: decoded images and the decode error.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace pyimgdir {

// A file that cannot be read or decoded. The message is the decoder's own reason;
// the pipeline prefixes the path before it reaches the caller.
struct DecodeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// An 8-bit interleaved (HWC) image. Decoders reuse `pixels` between calls so a worker
// thread allocates only when it meets a bigger image than before.
struct Image {
    int height = 0;
    int width = 0;
    int channels = 0;
    // The size stored in the file. Differs from height/width only after a DCT-scaled decode.
    int source_height = 0;
    int source_width = 0;
    std::vector<uint8_t> pixels;
    // Set by the 1/8- and 1/4-scale JPEG path that works from the entropy-coded data
    // directly (decode_jpeg_eighth.cpp) instead of through libjpeg.
    bool from_dc_terms = false;
    // After a region decode (DecodeOptions::choose_region): `height` rows of the region;
    // each row holds `width` pixels of which the region's are [region_x, region_x +
    // region_w) (libjpeg widens a cropped row to whole iMCU columns).
    bool region = false;
    int region_x = 0;
    int region_w = 0;

    void reset(int h, int w, int c) {
        from_dc_terms = false;
        region = false;
        region_x = 0;
        region_w = w;
        height = source_height = h;
        width = source_width = w;
        channels = c;
        pixels.resize(static_cast<size_t>(h) * static_cast<size_t>(w) * static_cast<size_t>(c));
    }
    uint8_t* data() { return pixels.data(); }
    const uint8_t* data() const { return pixels.data(); }
};

// The part of an image to decode, in the pixels of the image as decoded at 1/scale.
struct DecodeRegion {
    int y = 0, x = 0, h = 0, w = 0;
    int scale = 1;  // 1, 2, 4 or 8
};

struct DecodeOptions {
    int channels = 3;  // 1 (grayscale), 3 (rgb) or 4 (rgba), as color_mode asks
    // Refuse images with more pixels than this before allocating (decompression bombs).
    int64_t max_pixels = int64_t(1) << 28;
    // Opt-in DCT-domain downscaling for JPEG: given the full (height, width), returns the
    // largest allowed denominator (1, 2, 4 or 8). Null: always decode at full size.
    int (*choose_jpeg_scale)(const void* ctx, int height, int width) = nullptr;
    const void* scale_ctx = nullptr;
    // Decode baseline JPEGs straight from the entropy-coded data (decode_jpeg_eighth.cpp, same
    // pixels as libjpeg, which stays the fallback): at scale 1/8 (DC terms), and at 1/4 for a
    // region (random crops), where the MCUs outside it are only walked. False: always libjpeg.
    bool jpeg_fast_eighth = true;
    // The same path at scale 1/4 for whole images (2x2 and 4x4 IDCTs of every block). Off:
    // it needs every AC value, and on 12-megapixel 4:2:0 photos it takes up to twice
    // libjpeg-turbo's time, whose Huffman decoder and SIMD IDCTs it does not beat.
    bool jpeg_fast_quarter = false;
    // A region of a baseline JPEG at full scale, 1/2 or 1/4 is decoded from a smaller JPEG
    // holding just the region's MCUs (jpeg_region_scan.cpp, same pixels): libjpeg then
    // Huffman-decodes the region instead of every MCU above and beside it. Tried before the
    // entropy-data decoder at 1/4 (libjpeg on the smaller file is faster there). False:
    // libjpeg on the original file (or the entropy-data decoder, as jpeg_fast_eighth says).
    bool jpeg_region_scan = true;
    // Optional: given the decoded (height, width), marks the rows the caller will read in
    // `mask` (height bytes, zeroed) and returns true; rows left unmarked may be skipped and
    // their pixels left undefined. Returns false when every row is needed.
    bool (*rows_needed)(const void* ctx, int height, int width, uint8_t* mask) = nullptr;
    const void* rows_ctx = nullptr;
    // JPEG inverse DCT: libjpeg's accurate integer method (JDCT_ISLOW, what Pillow uses)
    // instead of TensorFlow's fast one (JDCT_IFAST).
    bool accurate_dct = false;
    // Pillow's conventions instead of TensorFlow's where the two differ (what Keras'
    // format="grain" path sees): grey from colour by Pillow's rounded ITU-R 601-2 luma,
    // CMYK JPEGs read as inverted (Adobe) CMYK, GIF transparent pixels keep their palette
    // colour (alpha 0 for rgba), 8-bit BMPs through their colour table with 32-bit BI_RGB
    // alpha ignored, 16-bit grey PNGs clipped to 255 (Pillow's I;16 -> RGB).
    bool pillow = false;
    // Optional, JPEG only: given the file's (height, width), fills the region to decode and
    // returns true (false: decode the whole image). Only the region's rows are read (rows
    // above it are skipped, rows below are never entropy-decoded) and only its iMCU columns
    // are transformed (jpeg_crop_scanline), exactly as tf.io.decode_and_crop_jpeg does.
    // rows_needed is then asked about the region's rows. Other formats ignore it.
    bool (*choose_region)(const void* ctx, int height, int width, DecodeRegion& region) = nullptr;
    const void* region_ctx = nullptr;
};

enum class ImageFormat { Unknown, Jpeg, Png, Gif, Bmp, WebP };

const char* format_name(ImageFormat f);

}  // namespace pyimgdir
